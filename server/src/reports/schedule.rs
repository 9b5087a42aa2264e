//! Scheduled reports: a thread that sleeps until the next cron firing of any schedule, renders
//! the report for its period and delivers it. The clock is injectable ([`Clock`]), so tests
//! step through days, weeks and daylight-saving changes without waiting.
//!
//! A firing missed while tallyd was down is not made up at start: schedules fire from the
//! first firing after start, as cron does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::config::ScheduleConfig;
use super::cron::CronSchedule;
use super::period::{Zone, parse_zone};

/// Where the scheduler reads the time and how it waits.
pub(crate) trait Clock: Send + Sync {
    fn now_ns(&self) -> i64;
}

/// The system clock.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        crate::http::now_ns()
    }
}

/// One schedule with its parsed cron expression and zone and its next firing.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    pub index: usize,
    pub config: ScheduleConfig,
    pub cron: CronSchedule,
    pub zone: Zone,
    pub next_ns: Option<i64>,
}

/// The plan of every schedule: which fire when.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    pub schedules: Vec<Planned>,
}

impl Plan {
    /// Plans every schedule from `now_ns`: each fires first at its first firing after now.
    pub(crate) fn new(configs: &[ScheduleConfig], now_ns: i64) -> Result<Plan, String> {
        let mut schedules = Vec::with_capacity(configs.len());
        for (index, config) in configs.iter().enumerate() {
            let cron = CronSchedule::parse(&config.cron)
                .map_err(|e| format!("reports.schedules[{index}]: {e}"))?;
            let zone = parse_zone(&config.timezone)
                .map_err(|e| format!("reports.schedules[{index}]: {e}"))?;
            let next_ns = cron.next_after(now_ns, &zone);
            schedules.push(Planned {
                index,
                config: config.clone(),
                cron,
                zone,
                next_ns,
            });
        }
        Ok(Plan { schedules })
    }

    /// The earliest next firing of any schedule.
    pub(crate) fn next_ns(&self) -> Option<i64> {
        self.schedules.iter().filter_map(|s| s.next_ns).min()
    }

    /// The schedules due at `now_ns`, each with the instant it was due; each moves on to its
    /// next firing after `now_ns` (firings missed while busy are skipped, not run twice).
    pub(crate) fn take_due(&mut self, now_ns: i64) -> Vec<(Planned, i64)> {
        let mut due = Vec::new();
        for planned in &mut self.schedules {
            if let Some(fire) = planned.next_ns
                && fire <= now_ns
            {
                due.push((planned.clone(), fire));
                planned.next_ns = planned.cron.next_after(now_ns.max(fire), &planned.zone);
            }
        }
        due
    }
}

/// What the scheduler does when a schedule fires.
pub(crate) type FireFn = dyn Fn(&Planned, i64) + Send + Sync;

/// The running scheduler thread.
pub(crate) struct Scheduler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    stopped: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Longest single sleep, so that a stepped clock or a suspended host is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);

impl Scheduler {
    pub(crate) fn start(mut plan: Plan, clock: Arc<dyn Clock>, fire: Arc<FireFn>) -> Scheduler {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tally-reports".into())
            .spawn(move || {
                loop {
                    let now = clock.now_ns();
                    for (planned, fired_at) in plan.take_due(now) {
                        fire(&planned, fired_at);
                    }
                    let wait = match plan.next_ns() {
                        Some(next) => Duration::from_nanos(
                            u64::try_from(next.saturating_sub(clock.now_ns()).max(1_000_000))
                                .unwrap_or(0),
                        ),
                        None => MAX_SLEEP,
                    }
                    .min(MAX_SLEEP);
                    let (lock, condvar) = &*thread_stop;
                    let Ok(guard) = lock.lock() else {
                        return;
                    };
                    if *guard {
                        return;
                    }
                    match condvar.wait_timeout(guard, wait) {
                        Ok((guard, _)) if *guard => return,
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            })
            .ok();
        Scheduler {
            stop,
            stopped,
            thread: Mutex::new(thread),
        }
    }

    /// Stops the thread and waits for a delivery in progress to finish.
    pub(crate) fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let (lock, condvar) = &*self.stop;
        if let Ok(mut guard) = lock.lock() {
            *guard = true;
        }
        condvar.notify_all();
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::period::{format_instant, parse_instant};

    fn schedule(cron: &str, zone: &str) -> ScheduleConfig {
        ScheduleConfig {
            name: "llm-usage".into(),
            cron: cron.into(),
            timezone: zone.into(),
            format: "html".into(),
            period: None,
            database: None,
            dir: Some("/tmp".into()),
            webhook: None,
            webhook_headers: Default::default(),
            email: Vec::new(),
        }
    }

    fn at(text: &str) -> i64 {
        parse_instant(text, 0, &Zone::utc()).unwrap()
    }

    /// Steps a clock minute by minute from `from` to `to` and collects every firing.
    fn firings(configs: &[ScheduleConfig], from: &str, to: &str) -> Vec<String> {
        let mut now = at(from);
        let end = at(to);
        let mut plan = Plan::new(configs, now).unwrap();
        let mut fired = Vec::new();
        while now <= end {
            for (planned, fired_at) in plan.take_due(now) {
                fired.push(format!(
                    "{} {}",
                    planned.config.name,
                    format_instant(fired_at, &planned.zone)
                ));
            }
            now += 60_000_000_000;
        }
        fired
    }

    #[test]
    fn a_daily_schedule_keeps_its_local_hour_across_the_change_to_summer_time() {
        // Paris moves from CET (UTC+1) to CEST (UTC+2) at 2027-03-28 01:00 UTC.
        let fired = firings(
            &[schedule("0 8 * * *", "Europe/Paris")],
            "2027-03-26T12:00:00Z",
            "2027-03-30T12:00:00Z",
        );
        assert_eq!(
            fired,
            [
                "llm-usage 2027-03-27 08:00 CET",
                "llm-usage 2027-03-28 08:00 CEST",
                "llm-usage 2027-03-29 08:00 CEST",
                "llm-usage 2027-03-30 08:00 CEST",
            ]
        );
    }

    #[test]
    fn a_schedule_in_the_skipped_hour_runs_once_at_the_change() {
        let fired = firings(
            &[schedule("30 2 * * *", "Europe/Paris")],
            "2027-03-27T12:00:00Z",
            "2027-03-29T12:00:00Z",
        );
        assert_eq!(
            fired,
            [
                "llm-usage 2027-03-28 03:00 CEST",
                "llm-usage 2027-03-29 02:30 CEST"
            ]
        );
    }

    #[test]
    fn a_schedule_in_the_repeated_hour_runs_once_at_the_change_back() {
        // Paris goes back from CEST to CET at 2027-10-31 01:00 UTC; 02:30 happens twice.
        let fired = firings(
            &[schedule("30 2 * * *", "Europe/Paris")],
            "2027-10-30T12:00:00Z",
            "2027-11-01T12:00:00Z",
        );
        assert_eq!(
            fired,
            [
                "llm-usage 2027-10-31 02:30 CEST",
                "llm-usage 2027-11-01 02:30 CET"
            ]
        );
    }

    #[test]
    fn several_schedules_fire_independently_and_a_late_check_fires_once() {
        let configs = [
            schedule("0 8 * * MON", "UTC"),
            schedule("*/30 * * * *", "UTC"),
        ];
        let mut plan = Plan::new(&configs, at("2027-01-03T23:59:00Z")).unwrap();
        assert_eq!(plan.next_ns(), Some(at("2027-01-04T00:00:00Z")));
        // Checked only at 08:10: the half-hourly schedule fires once, not sixteen times.
        let due = plan.take_due(at("2027-01-04T08:10:00Z"));
        let indices: Vec<usize> = due.iter().map(|(p, _)| p.index).collect();
        assert_eq!(indices, [0, 1]);
        assert_eq!(plan.next_ns(), Some(at("2027-01-04T08:30:00Z")));
    }

    struct FixedClock(i64);

    impl Clock for FixedClock {
        fn now_ns(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn the_scheduler_thread_fires_due_schedules_from_its_clock_and_stops() {
        let configs = [schedule("0 8 * * *", "UTC")];
        let plan = Plan::new(&configs, at("2027-01-01T07:00:00Z")).unwrap();
        let fired = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = fired.clone();
        let scheduler = Scheduler::start(
            plan,
            Arc::new(FixedClock(at("2027-01-01T08:00:00Z"))),
            Arc::new(move |planned: &Planned, at: i64| {
                sink.lock().unwrap().push((planned.index, at))
            }),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while fired.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        scheduler.stop();
        assert_eq!(*fired.lock().unwrap(), [(0, at("2027-01-01T08:00:00Z"))]);
    }
}
