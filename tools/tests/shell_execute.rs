//! `tally -e` and piped scripts against a real server: each output format, SHOW statements,
//! and the exit codes scripts rely on.

mod support;

use support::{closed_port, run_tally, server_with_samples, start_server};

#[test]
fn select_prints_one_aligned_table_per_series() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &[
            "-d",
            "llmtest",
            "-e",
            "SELECT util, memory_used FROM gpu GROUP BY gpu",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        "name: gpu\n\
         tags: gpu=0\n\
         time                  util  memory_used\n\
         --------------------  ----  -----------\n\
         2026-11-30T00:00:00Z  97.5        40000\n\
         2026-11-30T00:01:00Z    95        41000\n\
         (2 rows)\n\
         \n\
         name: gpu\n\
         tags: gpu=1\n\
         time                  util  memory_used\n\
         --------------------  ----  -----------\n\
         2026-11-30T00:00:00Z    12         1024\n\
         (1 row)\n"
    );
}

#[test]
fn table_aligns_wide_characters_and_leaves_missing_values_empty() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &[
            "-d",
            "llmtest",
            "-e",
            "SELECT completion_tokens, model, status FROM llm",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "name: llm\n\
         time                  completion_tokens  model     status\n\
         --------------------  -----------------  --------  ------\n\
         2026-11-30T00:00:00Z                120  gpt-4o    ok\n\
         2026-11-30T00:00:30Z                300  ソネット\n\
         (2 rows)\n"
    );
}

#[test]
fn show_statements_list_measurements_tags_and_fields() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &[
            "-d",
            "llmtest",
            "-e",
            "SHOW MEASUREMENTS; SHOW TAG KEYS FROM gpu; SHOW FIELD KEYS FROM llm",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "name: measurements\n\
         name\n\
         ----\n\
         gpu\n\
         llm\n\
         (2 rows)\n\
         \n\
         name: gpu\n\
         tagKey\n\
         ------\n\
         gpu\n\
         host\n\
         (2 rows)\n\
         \n\
         name: llm\n\
         fieldKey           fieldType\n\
         -----------------  ---------\n\
         completion_tokens  integer\n\
         latency_ms         float\n\
         status             string\n\
         (3 rows)\n"
    );
}

#[test]
fn csv_puts_name_and_tags_first_and_repeats_the_header_when_columns_change() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &[
            "-d",
            "llmtest",
            "--format",
            "csv",
            "-e",
            "SELECT util FROM gpu GROUP BY host, gpu; SHOW MEASUREMENTS",
        ],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "name,tags,time,util\n\
         gpu,\"gpu=0,host=node-1\",2026-11-30T00:00:00Z,97.5\n\
         gpu,\"gpu=0,host=node-1\",2026-11-30T00:01:00Z,95\n\
         gpu,\"gpu=1,host=node-1\",2026-11-30T00:00:00Z,12\n\
         name,tags,name\n\
         measurements,,gpu\n\
         measurements,,llm\n"
    );
}

#[test]
fn json_is_the_servers_answer_and_pretty_indents_it() {
    let server = server_with_samples();
    let query = "SELECT util FROM gpu WHERE gpu = '1'";
    let run = run_tally(
        &server.url,
        &["-d", "llmtest", "--format", "json", "-e", query],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let printed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let expected = serde_json::json!({"results": [{"statement_id": 0, "series": [{
        "name": "gpu",
        "columns": ["time", "util"],
        "values": [["2026-11-30T00:00:00Z", 12]],
    }]}]});
    assert_eq!(printed, expected);

    let pretty = run_tally(
        &server.url,
        &["-d", "llmtest", "--format", "json", "--pretty", "-e", query],
        "",
    );
    assert_eq!(pretty.code, 0, "{pretty:?}");
    assert!(pretty.stdout.lines().count() > 10, "{}", pretty.stdout);
    let reparsed: serde_json::Value = serde_json::from_str(&pretty.stdout).unwrap();
    assert_eq!(reparsed, expected);
}

#[test]
fn epoch_prints_integer_times_in_the_chosen_unit() {
    let server = server_with_samples();
    let query = "SELECT util FROM gpu WHERE gpu = '1'";
    let seconds = run_tally(
        &server.url,
        &["-d", "llmtest", "--epoch", "s", "-e", query],
        "",
    );
    assert_eq!(seconds.code, 0, "{seconds:?}");
    assert!(
        seconds.stdout.contains("\n1795996800    12\n"),
        "{}",
        seconds.stdout
    );
    let micros = run_tally(
        &server.url,
        &[
            "-d", "llmtest", "--epoch", "us", "--format", "csv", "-e", query,
        ],
        "",
    );
    assert_eq!(
        micros.stdout,
        "name,tags,time,util\ngpu,,1795996800000000,12\n"
    );
}

#[test]
fn a_parse_error_exits_1_with_a_caret_and_sends_nothing() {
    let server = start_server();
    let run = run_tally(
        &server.url,
        &[
            "-e",
            "CREATE DATABASE must_not_exist; SELECT mean(util) WHERE host = 'a'",
        ],
        "",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    let caret_under_where = format!(
        "CREATE DATABASE must_not_exist; SELECT mean(util) WHERE host = 'a'\n{}^^^^^\n",
        " ".repeat(50)
    );
    assert_eq!(
        run.stderr,
        format!("error: expected FROM, found WHERE at line 1, column 51\n{caret_under_where}")
    );
    // The valid statement before the error was not sent either.
    assert!(!server.query("SHOW DATABASES").contains("must_not_exist"));
}

#[test]
fn a_server_error_is_printed_as_err_and_exits_1() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &["-d", "no_such_db", "-e", "SELECT util FROM gpu"],
        "",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("ERR: "), "{}", run.stderr);
    assert!(run.stderr.contains("no_such_db"), "{}", run.stderr);
}

#[test]
fn statements_after_a_failed_one_still_run_and_the_exit_code_reports_the_failure() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &[
            "-e",
            "SELECT util FROM no_such_db.autogen.gpu; use llmtest; SHOW MEASUREMENTS",
        ],
        "",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("ERR: "), "{}", run.stderr);
    assert!(
        run.stdout.contains("name: measurements\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_refused_connection_exits_2_and_says_what_to_do() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let run = run_tally(&url, &["-e", "SHOW DATABASES"], "");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!("cannot connect to {url}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--host"), "{}", run.stderr);
}

#[test]
fn a_server_that_never_answers_times_out_with_exit_1() {
    // The kernel accepts connections into the backlog, but nothing ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let run = run_tally(&url, &["--timeout", "300ms", "-e", "SHOW DATABASES"], "");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        format!("ERR: no answer from {url} within 300ms; raise --timeout or narrow the query\n")
    );
}

#[test]
fn usage_errors_exit_2() {
    let server = start_server();
    let bad_format = run_tally(
        &server.url,
        &["--format", "xml", "-e", "SHOW DATABASES"],
        "",
    );
    assert_eq!(bad_format.code, 2, "{bad_format:?}");
    let https = run_tally("https://127.0.0.1:1", &["-e", "SHOW DATABASES"], "");
    assert_eq!(https.code, 2, "{https:?}");
    assert!(
        https.stderr.contains("https is not supported yet"),
        "{}",
        https.stderr
    );
}

#[test]
fn help_documents_the_exit_codes_and_version_prints_the_version() {
    let help = run_tally("http://127.0.0.1:1", &["--help"], "");
    assert_eq!(help.code, 0);
    for needle in [
        "Exit codes",
        "0  every statement succeeded",
        "2  usage error",
        "Examples:",
    ] {
        assert!(help.stdout.contains(needle), "{needle}: {}", help.stdout);
    }
    let version = run_tally("http://127.0.0.1:1", &["--version"], "");
    assert_eq!(
        version.stdout,
        format!("tally {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_piped_script_runs_line_by_line_with_commands_and_continuations() {
    let server = server_with_samples();
    let script = "use llmtest\n\
                  format csv\n\
                  SELECT max(util) \\\n\
                  FROM gpu\n\
                  SELECT count(\n\
                  completion_tokens) FROM llm; SHOW MEASUREMENTS\n";
    let run = run_tally(&server.url, &[], script);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "name,tags,time,max\n\
         gpu,,2026-11-30T00:00:00Z,97.5\n\
         name,tags,time,count\n\
         llm,,1970-01-01T00:00:00Z,2\n\
         name,tags,name\n\
         measurements,,gpu\n\
         measurements,,llm\n"
    );
}

#[test]
fn a_piped_script_with_a_bad_line_exits_1_but_runs_the_other_lines() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &["-d", "llmtest"],
        "SELEC * FROM gpu\nSHOW MEASUREMENTS\n",
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("SELEC * FROM gpu\n^^^^^"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("name: measurements"), "{}", run.stdout);
}

#[test]
fn timing_prints_the_elapsed_time_on_standard_error() {
    let server = server_with_samples();
    let run = run_tally(
        &server.url,
        &["-d", "llmtest", "-e", "timing on; SHOW MEASUREMENTS"],
        "",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.starts_with("Elapsed: "), "{}", run.stderr);
    assert!(
        run.stdout.starts_with("name: measurements"),
        "{}",
        run.stdout
    );
}
