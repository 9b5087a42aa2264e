//! The interactive shell driven through a pseudo-terminal, as a person would use it: queries,
//! `use`, statements over several lines, Ctrl-C, tab completion, history and leaving.

mod support;

use std::path::Path;

use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};
use support::{TestServer, closed_port, server_with_samples, start_server, tally_command};

/// How long one expected piece of output may take to appear before the test fails; a guard
/// against a hung shell, not a measurement.
const EXPECT_LIMIT_MS: u64 = 30_000;

fn spawn_shell(server: &TestServer, history: &Path) -> PtySession {
    let mut command = tally_command(&server.url);
    command.env("TALLY_HISTORY", history).env("TERM", "xterm");
    let mut shell = spawn_command(command, Some(EXPECT_LIMIT_MS))
        .unwrap_or_else(|error| panic!("cannot start tally on a pseudo-terminal: {error}"));
    for greeting in ["Connected to ", "tally> "] {
        if let Err(error) = shell.exp_string(greeting) {
            panic!("the shell did not print {greeting:?}: {error}");
        }
    }
    shell
}

fn expect_clean_exit(mut shell: PtySession) {
    if let Err(error) = shell.exp_eof() {
        panic!("the shell did not end: {error}");
    }
    match shell.process().wait() {
        Ok(WaitStatus::Exited(_, code)) => assert_eq!(code, 0),
        other => panic!("the shell did not exit normally: {other:?}"),
    }
}

#[test]
fn a_session_runs_queries_switches_database_continues_lines_and_exits() {
    let server = server_with_samples();
    let history = server.scratch_path("history");
    let mut shell = spawn_shell(&server, &history);

    shell.send_line("use llmtest").unwrap();
    shell.exp_string("Using database llmtest").unwrap();
    shell.exp_string("tally:llmtest> ").unwrap();

    shell
        .send_line("SELECT util FROM gpu WHERE gpu = '1'")
        .unwrap();
    shell.exp_string("2026-11-30T00:00:00Z    12").unwrap();
    shell.exp_string("(1 row)").unwrap();

    // An open parenthesis carries the statement to the next line.
    shell.send_line("SELECT count(").unwrap();
    shell.exp_string("-> ").unwrap();
    shell.send_line("util) FROM gpu").unwrap();
    shell.exp_string("1970-01-01T00:00:00Z      3").unwrap();

    // So does a line that ends with a backslash.
    shell.send_line("SHOW TAG KEYS \\").unwrap();
    shell.exp_string("-> ").unwrap();
    shell.send_line("FROM llm").unwrap();
    shell.exp_string("provider").unwrap();
    shell.exp_string("(2 rows)").unwrap();

    shell.send_line("exit").unwrap();
    expect_clean_exit(shell);

    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("use llmtest"), "{saved}");
    assert!(saved.contains("SELECT count("), "{saved}");
    assert!(saved.contains("util) FROM gpu"), "{saved}");
}

#[test]
fn ctrl_c_abandons_the_statement_being_typed_and_ctrl_d_leaves() {
    let server = server_with_samples();
    let mut shell = spawn_shell(&server, &server.scratch_path("history"));

    shell.send_line("SELECT mean(").unwrap();
    shell.exp_string("-> ").unwrap();
    shell.send_control('c').unwrap();
    shell.exp_string("tally> ").unwrap();
    // Had the abandoned line been kept, this would be a parse error.
    shell.send_line("SHOW DATABASES").unwrap();
    shell.exp_string("llmtest").unwrap();
    shell.exp_string("(1 row)").unwrap();

    shell.send_control('d').unwrap();
    expect_clean_exit(shell);
}

#[test]
fn a_parse_error_is_shown_with_a_caret_and_the_shell_goes_on() {
    let server = server_with_samples();
    let mut shell = spawn_shell(&server, &server.scratch_path("history"));
    shell.send_line("SELECT util gpu").unwrap();
    shell.exp_string("expected FROM").unwrap();
    shell.exp_string("^^^").unwrap();
    shell.send_line("SHOW DATABASES").unwrap();
    shell.exp_string("(1 row)").unwrap();
    shell.send_line("quit").unwrap();
    expect_clean_exit(shell);
}

#[test]
fn tab_completes_keywords_and_names_fetched_from_the_server() {
    let server = server_with_samples();
    let mut shell = spawn_shell(&server, &server.scratch_path("history"));
    shell.send_line("use llmtest").unwrap();
    shell.exp_string("tally:llmtest> ").unwrap();

    // `ll` can only be the measurement `llm`, which the shell learnt with SHOW MEASUREMENTS.
    shell.send("SELECT completion_tokens FROM ll\t").unwrap();
    shell.flush().unwrap();
    shell.send_line("").unwrap();
    shell.exp_string("name: llm").unwrap();
    shell.exp_string("(2 rows)").unwrap();

    // `WH` after a measurement can only be WHERE; `gp` only the measurement `gpu`.
    shell.send("SELECT memory_used FROM gp\t").unwrap();
    shell.flush().unwrap();
    shell.send(" WH\t").unwrap();
    shell.flush().unwrap();
    shell.send_line(" gpu = '1'").unwrap();
    shell
        .exp_string("2026-11-30T00:00:00Z         1024")
        .unwrap();
    shell.exp_string("(1 row)").unwrap();

    shell.send_line("exit").unwrap();
    expect_clean_exit(shell);
}

#[test]
fn settings_commands_change_how_results_are_printed() {
    let server = server_with_samples();
    let mut shell = spawn_shell(&server, &server.scratch_path("history"));
    shell.send_line("use llmtest").unwrap();
    shell.exp_string("tally:llmtest> ").unwrap();
    shell.send_line("format csv").unwrap();
    shell.exp_string("Format: csv").unwrap();
    shell.send_line("epoch s").unwrap();
    shell.exp_string("Epoch: s").unwrap();
    shell
        .send_line("SELECT util FROM gpu WHERE gpu = '1'")
        .unwrap();
    shell.exp_string("gpu,,1795996800,12").unwrap();
    shell.send_line("help").unwrap();
    shell.exp_string("Shell commands:").unwrap();
    shell.send_line("history").unwrap();
    shell.exp_string("    2  format csv").unwrap();
    shell.send_line("exit").unwrap();
    expect_clean_exit(shell);
}

#[test]
fn connect_switches_servers_only_when_the_new_one_answers() {
    let first = server_with_samples();
    let second = start_server();
    second.load("other", "m v=1 1795996800\n");
    let mut shell = spawn_shell(&first, &first.scratch_path("history"));

    let closed = format!("http://127.0.0.1:{}", closed_port());
    shell.send_line(&format!("connect {closed}")).unwrap();
    shell
        .exp_string(&format!("cannot connect to {closed}"))
        .unwrap();
    shell
        .exp_string(&format!("Still using {}", first.url))
        .unwrap();

    shell.send_line(&format!("connect {}", second.url)).unwrap();
    shell
        .exp_string(&format!("Connected to {}", second.url))
        .unwrap();
    shell.send_line("SHOW DATABASES").unwrap();
    shell.exp_string("other").unwrap();
    shell.exp_string("(1 row)").unwrap();
    shell.send_line("exit").unwrap();
    expect_clean_exit(shell);
}

#[test]
fn the_shell_starts_without_a_server_and_says_how_to_point_it_at_one() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let scratch = tempfile::tempdir().unwrap();
    let mut command = tally_command(&url);
    command.env("TALLY_HISTORY", scratch.path().join("history"));
    command.env("TERM", "xterm");
    let mut shell = spawn_command(command, Some(EXPECT_LIMIT_MS)).unwrap();
    shell
        .exp_string(&format!("cannot connect to {url}"))
        .unwrap();
    shell.exp_string("--host").unwrap();
    shell.exp_string("tally> ").unwrap();
    shell.send_line("SHOW DATABASES").unwrap();
    shell
        .exp_string(&format!("cannot connect to {url}"))
        .unwrap();
    shell.send_line("exit").unwrap();
    expect_clean_exit(shell);
}
