//! The command line (clap derive): the only module that knows about clap. It turns arguments
//! into calls of the library and exit codes ([`crate::errors::exit_code`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::child::{self, ChildArgs};
use crate::errors::{InputErrors, exit_code};
use crate::events::RunEvent;
use crate::outcome::{Outcome, ScenarioResult};
use crate::report::{Summary, human, json};
use crate::runner::{self, RunOptions, signals};
use crate::scenario::{Scenario, discover::discover};

/// termwatch: run ZeroMQ bus scenarios in isolated processes and turn shutdown hangs into
/// verdicts with diagnostics.
#[derive(Debug, Parser)]
#[command(name = "termwatch", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios and compare each outcome with its expectation.
    Run(RunArgs),
    /// Validate scenario files without running anything.
    Check(SelectArgs),
    /// List the scenarios that would run.
    List(SelectArgs),
    /// Run one scenario verbosely, again and again, until it hangs (or N runs).
    Repro(ReproArgs),
    /// Internal: run one scenario in this process (the child side).
    #[command(name = "__run-scenario", hide = true)]
    RunScenario(ChildCliArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Lines for people.
    Human,
    /// JSON Lines on stdout (human output goes to stderr).
    Json,
}

#[derive(Debug, Args)]
struct SelectArgs {
    /// Scenario files or folders (searched recursively for *.toml).
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// The folder scenario names are relative to.
    #[arg(long, default_value = "scenarios")]
    root: PathBuf,
    /// Only scenarios whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Scenarios run at once [default: the number of cores].
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Replace every step's deadline, e.g. `500ms`.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Show the diagnostics of every hang, also the expected ones.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Debug, Args)]
struct ReproArgs {
    /// The scenario file.
    file: PathBuf,
    /// Run at most this many times, stopping at the first hang.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// The folder scenario names are relative to.
    #[arg(long, default_value = "scenarios")]
    root: PathBuf,
    /// Replace every step's deadline.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

#[derive(Debug, Args)]
struct ChildCliArgs {
    #[arg(long)]
    file: PathBuf,
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    run_dir: PathBuf,
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

/// Parses the command line, runs it and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::RunScenario(a) => child::run(ChildArgs {
            file: a.file,
            root: a.root,
            timeout: a.timeout,
            run_dir: a.run_dir,
        }),
        Command::Check(select) => match load(&select) {
            Ok(scenarios) => {
                println!("{} scenario(s) valid", scenarios.len());
                exit_code::OK
            }
            Err(code) => code,
        },
        Command::List(select) => match load(&select) {
            Ok(scenarios) => {
                for s in &scenarios {
                    println!(
                        "{}\t{}\t{}",
                        s.name,
                        runner::describe_expectation(s),
                        s.file.display()
                    );
                }
                exit_code::OK
            }
            Err(code) => code,
        },
        Command::Run(args) => run(&args),
        Command::Repro(args) => repro(&args),
    }
}

/// Loads and filters scenarios, or prints every input error and returns exit code 2.
fn load(select: &SelectArgs) -> Result<Vec<Scenario>, i32> {
    let scenarios =
        discover(&select.paths, &select.root).map_err(|errors| report_input_errors(&errors))?;
    Ok(match &select.filter {
        Some(text) => scenarios
            .into_iter()
            .filter(|s| s.name.contains(text.as_str()))
            .collect(),
        None => scenarios,
    })
}

fn report_input_errors(errors: &InputErrors) -> i32 {
    for e in &errors.0 {
        eprintln!("{}", e.render());
    }
    eprintln!("{} error(s) in the input; nothing ran", errors.0.len());
    exit_code::BAD_INPUT
}

fn run_options(
    root: &Path,
    jobs: Option<usize>,
    timeout: Option<Duration>,
) -> Result<RunOptions, i32> {
    let executable = std::env::current_exe().map_err(|e| {
        eprintln!("error: cannot find termwatch's own executable to run scenarios: {e}");
        exit_code::BAD_INPUT
    })?;
    if let Err(e) = signals::install() {
        eprintln!("error: cannot install the Ctrl-C handler: {e}");
        return Err(exit_code::BAD_INPUT);
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(RunOptions {
        jobs,
        timeout,
        root: root.to_owned(),
        executable,
    })
}

fn interrupted_exit() -> Option<i32> {
    signals::interrupted_by().map(|signal| {
        if signal == libc::SIGTERM {
            exit_code::TERMINATED
        } else {
            exit_code::INTERRUPTED
        }
    })
}

fn run(args: &RunArgs) -> i32 {
    let scenarios = match load(&args.select) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if scenarios.is_empty() {
        eprintln!("error: no scenario matches the filter");
        return exit_code::BAD_INPUT;
    }
    let options = match run_options(&args.select.root, args.jobs, args.timeout) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let started = Instant::now();
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr());
    let human_out: &mut dyn Write = if args.format == Format::Json {
        &mut stderr
    } else {
        &mut stdout
    };
    let mut json_out = std::io::stdout();
    let results = runner::run_all(&scenarios, &options, |event| {
        if let RunEvent::ScenarioFinished(result) = event {
            let _ = human::write_result(human_out, result);
            if args.format == Format::Json {
                let _ = json::write_result(&mut json_out, result);
            }
        }
    });
    let details: Vec<&ScenarioResult> = results
        .iter()
        .filter(|r| {
            (!r.passed && r.outcome != Outcome::Interrupted)
                || (args.verbose && r.outcome != Outcome::Clean)
                || !r.leaks.is_empty()
        })
        .collect();
    for result in details {
        let _ = human::write_details(human_out, result);
    }
    let summary = Summary::of(&results);
    let elapsed = started.elapsed();
    let _ = human::write_summary(human_out, summary, elapsed.as_secs_f64());
    if args.format == Format::Json {
        let _ = json::write_summary(&mut json_out, summary, elapsed.as_secs_f64() * 1000.0);
    }
    interrupted_exit().unwrap_or(if summary.failed == 0 {
        exit_code::OK
    } else {
        exit_code::FAILED
    })
}

fn repro(args: &ReproArgs) -> i32 {
    let select = SelectArgs {
        paths: vec![args.file.clone()],
        root: args.root.clone(),
        filter: None,
    };
    let scenarios = match load(&select) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let options = match run_options(&args.root, Some(1), args.timeout) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let scenario = &scenarios[0];
    println!("{}: {}", scenario.name, scenario.description.trim());
    println!("expected: {}", runner::describe_expectation(scenario));
    let mut all_met = true;
    for attempt in 1..=args.repeat.max(1) {
        println!("\nrun {attempt}:");
        let started = Instant::now();
        let send = |event: RunEvent| match event {
            RunEvent::PhaseStarted {
                label, timeout_ms, ..
            } => {
                println!(
                    "  {:>9.1} ms  ▶ {label} (deadline {timeout_ms} ms)",
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            RunEvent::PhaseFinished {
                label, duration_ms, ..
            } => {
                println!(
                    "  {:>9.1} ms  ✓ {label} ({duration_ms:.2} ms)",
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            RunEvent::ScenarioStarted { .. } | RunEvent::ScenarioFinished(_) => {}
        };
        let result = runner::run_one(scenario, &options, &send);
        let mut out = std::io::stdout();
        let _ = human::write_result(&mut out, &result);
        all_met &= result.passed;
        if result.outcome != Outcome::Clean || !result.passed {
            let _ = human::write_details(&mut out, &result);
        }
        if result.outcome == Outcome::Hang {
            println!(
                "\nstopped at the first hang (run {attempt} of at most {})",
                args.repeat
            );
            break;
        }
        if let Some(code) = interrupted_exit() {
            return code;
        }
    }
    interrupted_exit().unwrap_or(if all_met {
        exit_code::OK
    } else {
        exit_code::FAILED
    })
}
