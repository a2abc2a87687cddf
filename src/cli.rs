//! The command line (clap derive): the only module that knows about clap. It turns arguments
//! into calls of the library and exit codes ([`crate::errors::exit_code`]).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bench;
use crate::child::{self, ChildArgs};
use crate::errors::{InputErrors, exit_code};
use crate::events::RunEvent;
use crate::outcome::{Outcome, ScenarioResult, SnapshotStatus, in_words};
use crate::partition::Partition;
use crate::repeat::{Status, Tallies, Tally};
use crate::report::{Summary, catalogue, human, json, junit, progress::Progress};
use crate::runner::{self, RunOptions, signals, stress::Stress};
use crate::scenario::{Scenario, discover::discover};
use crate::trace::layer::install_subscriber;
use crate::trace::snapshot::{self, SnapshotMode, SnapshotOptions};
use crate::trace::{chrome, timeline};

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
    List(ListArgs),
    /// Run one scenario verbosely, again and again, until it hangs (or N runs).
    Repro(ReproArgs),
    /// Run one scenario once and show its lifecycle trace.
    Trace(TraceArgs),
    /// Internal: run one scenario in this process (the child side).
    #[command(name = "__run-scenario", hide = true)]
    RunScenario(ChildCliArgs),
    /// Measure proxy throughput against direct PUB→SUB.
    Bench(bench::BenchArgs),
    /// Compare two benchmark results; exit 1 when a workload got slower.
    Compare(bench::CompareArgs),
    /// Internal: one process of a benchmark sample.
    #[command(name = "__bench-role", hide = true)]
    BenchRole(bench::BenchRoleArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Lines for people.
    Human,
    /// JSON Lines, on stdout (human output goes to stderr) or to `--output`.
    Json,
    /// JUnit XML, to `--output` (human output stays on stdout) or stdout (human to stderr).
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SnapshotsFlag {
    /// Compare when a snapshot exists; note the missing ones.
    Auto,
    /// Compare; a changed or missing snapshot fails the scenario, with a diff.
    Check,
    /// Write each run's trace as its snapshot.
    Update,
    /// Leave snapshots alone.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TraceFormat {
    /// A timeline for people.
    Text,
    /// One JSON object: the raw events and the normalized trace.
    Json,
    /// Chrome trace-event JSON (Perfetto, chrome://tracing).
    Chrome,
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
    /// Only shard M of N: `slice:M/N` deals scenarios out in turn, `hash:M/N` by a stable hash
    /// of their names; the N shards together hold every scenario exactly once.
    #[arg(long)]
    partition: Option<Partition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    /// One line per scenario: name, expectation, file (tab-separated).
    Text,
    /// The catalogue page: every scenario with its expectation, description and reference,
    /// grouped by folder.
    Markdown,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
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
    /// Write the `json` or `junit` output to this file; human output then goes to stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Run every scenario this many times and count its verdicts; one that varies is flaky.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Keep every core busy with spinning threads beside the scenarios, to shake out
    /// timing-dependent hangs.
    #[arg(long)]
    stress: bool,
    /// Show the diagnostics of every hang, also the expected ones (and, with `--repeat`,
    /// every attempt's line).
    #[arg(long, short)]
    verbose: bool,
    /// Compare each run's lifecycle trace with `<snapshot-dir>/<name>.snap`.
    #[arg(long, value_enum, default_value_t = SnapshotsFlag::Auto)]
    snapshots: SnapshotsFlag,
    /// The folder snapshots live in.
    #[arg(long, default_value = "snapshots")]
    snapshot_dir: PathBuf,
}

#[derive(Debug, Args)]
struct TraceArgs {
    /// The scenario file.
    file: PathBuf,
    /// The folder scenario names are relative to.
    #[arg(long, default_value = "scenarios")]
    root: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
    format: TraceFormat,
    /// Write the trace to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Replace every step's deadline.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
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
    if !matches!(cli.command, Command::RunScenario(_)) {
        install_subscriber(None);
    }
    match cli.command {
        Command::RunScenario(a) => child::run(ChildArgs {
            file: a.file,
            root: a.root,
            timeout: a.timeout,
            run_dir: a.run_dir,
        }),
        Command::Check(select) => match load(&select).map(|s| shard(s, select.partition)) {
            Ok(scenarios) => {
                println!("{} scenario(s) valid", scenarios.len());
                exit_code::OK
            }
            Err(code) => code,
        },
        Command::List(ListArgs { select, format }) => {
            match load(&select).map(|s| shard(s, select.partition)) {
                Ok(scenarios) if format == ListFormat::Markdown => {
                    print!("{}", catalogue::render_markdown(&scenarios));
                    exit_code::OK
                }
                Ok(scenarios) => {
                    for s in &scenarios {
                        println!(
                            "{}\t{}\t{}",
                            s.name,
                            in_words(s.expect, s.expect_hang_at.as_deref()),
                            s.file.display()
                        );
                    }
                    exit_code::OK
                }
                Err(code) => code,
            }
        }
        Command::Run(args) => run(&args),
        Command::Repro(args) => repro(&args),
        Command::Trace(args) => trace(&args),
        Command::Bench(args) => bench_exit(bench::run_bench(&args)),
        Command::Compare(args) => bench_exit(bench::run_compare(&args)),
        Command::BenchRole(args) => bench_exit(bench::run_bench_role(&args)),
    }
}

/// The exit code of a bench command; an error is reported and is bad input (2).
fn bench_exit(outcome: anyhow::Result<i32>) -> i32 {
    outcome.unwrap_or_else(|error| {
        eprintln!("termwatch: {error:#}");
        exit_code::BAD_INPUT
    })
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

/// Keeps the shard `--partition` asks for; an empty shard is noted, not an error (a CI matrix
/// may have more shards than a small suite fills).
fn shard(scenarios: Vec<Scenario>, partition: Option<Partition>) -> Vec<Scenario> {
    let Some(partition) = partition else {
        return scenarios;
    };
    let shard = partition.apply(scenarios, |s| s.name.as_str());
    if shard.is_empty() {
        eprintln!("note: shard {partition} holds no scenario");
    }
    shard
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
    snapshots: SnapshotOptions,
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
        snapshots,
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

/// Where the machine-readable output of `run` goes.
enum MachineOutput {
    /// Human output only.
    None,
    /// JSON Lines, to stdout or a file.
    Json(Box<dyn Write>),
    /// JUnit XML, to a file (rewritten after every scenario, so a killed run still leaves a
    /// whole document) or to stdout at the end, with the run's facts as suite properties.
    Junit {
        path: Option<PathBuf>,
        properties: Vec<(&'static str, String)>,
    },
}

impl MachineOutput {
    /// Opens the output `args` ask for; a file that cannot be created is bad input.
    fn open(args: &RunArgs, jobs: usize) -> Result<Self, i32> {
        let create = |path: &Path| {
            std::fs::File::create(path).map_err(|e| {
                eprintln!(
                    "error: cannot create the output file {}: {e}",
                    path.display()
                );
                exit_code::BAD_INPUT
            })
        };
        match (args.format, &args.output) {
            (Format::Human, Some(_)) => {
                eprintln!("error: --output needs --format json or --format junit");
                Err(exit_code::BAD_INPUT)
            }
            (Format::Human, None) => Ok(MachineOutput::None),
            (Format::Json, None) => Ok(MachineOutput::Json(Box::new(std::io::stdout()))),
            (Format::Json, Some(path)) => Ok(MachineOutput::Json(Box::new(
                std::io::LineWriter::new(create(path)?),
            ))),
            (Format::Junit, path) => {
                if let Some(path) = path {
                    create(path)?;
                }
                Ok(MachineOutput::Junit {
                    path: path.clone(),
                    properties: junit_properties(args, jobs),
                })
            }
        }
    }

    /// After a scenario's tally, the last of `done`: its JSON line, or the JUnit document so
    /// far when it goes to a file.
    fn scenario_done(
        &mut self,
        done: &[Tally],
        with_counts: bool,
        elapsed: Duration,
    ) -> std::io::Result<()> {
        match (self, done.last()) {
            (MachineOutput::Json(out), Some(tally)) => json::write_tally(out, tally, with_counts),
            (
                MachineOutput::Junit {
                    path: Some(path),
                    properties,
                },
                _,
            ) => junit::write_file(path, done, properties, elapsed),
            _ => Ok(()),
        }
    }

    /// At the end of the run: the JSON summary line, or the whole JUnit document.
    fn finish(
        &mut self,
        done: &[Tally],
        summary: Summary,
        elapsed: Duration,
    ) -> std::io::Result<()> {
        match self {
            MachineOutput::None => Ok(()),
            MachineOutput::Json(out) => {
                json::write_summary(out, summary, elapsed.as_secs_f64() * 1000.0)
            }
            MachineOutput::Junit {
                path: Some(path),
                properties,
            } => junit::write_file(path, done, properties, elapsed),
            MachineOutput::Junit {
                path: None,
                properties,
            } => {
                let xml =
                    junit::render(done, properties, elapsed).map_err(std::io::Error::other)?;
                std::io::stdout().write_all(xml.as_bytes())
            }
        }
    }

    /// Whether the machine output has stdout, so human output must go to stderr.
    fn owns_stdout(&self, args: &RunArgs) -> bool {
        args.output.is_none() && !matches!(self, MachineOutput::None)
    }
}

/// The suite-level facts of a run, as JUnit properties.
fn junit_properties(args: &RunArgs, jobs: usize) -> Vec<(&'static str, String)> {
    let mut properties = vec![
        ("termwatch.version", env!("CARGO_PKG_VERSION").to_owned()),
        ("jobs", jobs.to_string()),
        ("repeat", args.repeat.to_string()),
        ("stress", args.stress.to_string()),
    ];
    if let Some(partition) = args.select.partition {
        properties.push(("partition", partition.to_string()));
    }
    properties
}

fn run(args: &RunArgs) -> i32 {
    let scenarios = match load(&args.select) {
        Ok(s) if s.is_empty() => {
            eprintln!("error: no scenario matches the filter");
            return exit_code::BAD_INPUT;
        }
        Ok(s) => shard(s, args.select.partition),
        Err(code) => return code,
    };
    let snapshots = SnapshotOptions {
        mode: match args.snapshots {
            SnapshotsFlag::Auto => SnapshotMode::Auto,
            SnapshotsFlag::Check => SnapshotMode::Check,
            SnapshotsFlag::Update => SnapshotMode::Update,
            SnapshotsFlag::Off => SnapshotMode::Off,
        },
        dir: args.snapshot_dir.clone(),
    };
    let options = match run_options(&args.select.root, args.jobs, args.timeout, snapshots) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut machine = match MachineOutput::open(args, options.jobs) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let repeat = args.repeat as usize;
    let order: HashMap<&str, usize> = scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let attempts: Vec<Scenario> = scenarios
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.clone(), repeat))
        .collect();

    let started = Instant::now();
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    let human_out: &mut dyn Write = if machine.owns_stdout(args) {
        &mut stderr
    } else {
        &mut stdout
    };
    let progress = Progress::new(attempts.len());
    let stress = args
        .stress
        .then(|| Stress::start(std::thread::available_parallelism().map_or(1, |n| n.get())));
    let mut tallies = Tallies::new(repeat);
    let mut done: Vec<Tally> = Vec::new();
    let mut write_failed = false;
    runner::run_all(&attempts, &options, |event| {
        progress.on_event(event);
        let RunEvent::ScenarioFinished(result) = event else {
            return;
        };
        if repeat > 1 && args.verbose {
            progress
                .suspend(|| human::write_result(human_out, result))
                .ok();
        }
        let Some(tally) = tallies.add((**result).clone()) else {
            return;
        };
        progress
            .suspend(|| human::write_tally(human_out, &tally))
            .ok();
        done.push(tally);
        write_failed |= machine
            .scenario_done(&done, repeat > 1, started.elapsed())
            .is_err();
    });
    drop(stress);
    progress.finish();
    let rest = tallies.finish();
    for tally in &rest {
        let _ = human::write_tally(human_out, tally);
    }
    done.extend(rest);
    done.sort_by_key(|t| order.get(t.attempts[0].name.as_str()).copied());

    for tally in &done {
        let shown = tally.representative();
        let unexpected = matches!(tally.status, Status::Failed | Status::Flaky);
        let notable = args.verbose && shown.outcome != Outcome::Clean;
        if unexpected || notable || !shown.leaks.is_empty() {
            let _ = human::write_details(human_out, shown, &tally.failures());
        }
    }
    let _ = write_snapshot_notes(human_out, done.iter().flat_map(|t| t.attempts.iter()));
    let summary = Summary {
        not_started: scenarios.len() - done.len(),
        ..Summary::of(&done)
    };
    let elapsed = started.elapsed();
    let _ = human::write_summary(human_out, summary, elapsed.as_secs_f64());
    write_failed |= machine.finish(&done, summary, elapsed).is_err();
    if write_failed {
        eprintln!("error: could not write the machine-readable output (--format, --output)");
    }
    interrupted_exit().unwrap_or(if summary.failed == 0 && !write_failed {
        exit_code::OK
    } else {
        exit_code::FAILED
    })
}

/// Loads the one scenario of `repro` and `trace`, and options to run it alone, without
/// snapshots.
fn load_one(
    file: &Path,
    root: &Path,
    timeout: Option<Duration>,
) -> Result<(Scenario, RunOptions), i32> {
    let select = SelectArgs {
        paths: vec![file.to_owned()],
        root: root.to_owned(),
        filter: None,
        partition: None,
    };
    let mut scenarios = load(&select)?;
    if scenarios.len() != 1 {
        eprintln!(
            "error: {} holds {} scenarios; name one scenario file",
            file.display(),
            scenarios.len()
        );
        return Err(exit_code::BAD_INPUT);
    }
    let snapshots = SnapshotOptions {
        mode: SnapshotMode::Off,
        ..SnapshotOptions::default()
    };
    let options = run_options(root, Some(1), timeout, snapshots)?;
    Ok((scenarios.swap_remove(0), options))
}

fn repro(args: &ReproArgs) -> i32 {
    let (scenario, options) = match load_one(&args.file, &args.root, args.timeout) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let scenario = &scenario;
    println!("{}: {}", scenario.name, scenario.description.trim());
    println!(
        "expected: {}",
        in_words(scenario.expect, scenario.expect_hang_at.as_deref())
    );
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
            let _ = human::write_details(&mut out, &result, &result.failures);
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

/// Lists the snapshots written, and the ones missing (which `auto` only notes).
fn write_snapshot_notes<'a>(
    out: &mut (impl Write + ?Sized),
    results: impl Iterator<Item = &'a ScenarioResult> + Clone,
) -> std::io::Result<()> {
    let with_status = |status| -> Vec<&str> {
        let paths: BTreeSet<&str> = results
            .clone()
            .filter_map(|r| r.snapshot.as_ref().filter(|s| s.status == status))
            .map(|s| s.path.as_str())
            .collect();
        paths.into_iter().collect()
    };
    let written = with_status(SnapshotStatus::Written);
    if !written.is_empty() {
        writeln!(out, "\nsnapshots written: {}", written.join(", "))?;
    }
    let missing = with_status(SnapshotStatus::Missing);
    if !missing.is_empty() {
        writeln!(
            out,
            "\nnote: no snapshot yet for {} scenario(s): {} (`--snapshots update` writes them)",
            missing.len(),
            missing.join(", ")
        )?;
    }
    Ok(())
}

/// `termwatch trace`: runs one scenario once and writes its trace in the chosen format.
fn trace(args: &TraceArgs) -> i32 {
    let (scenario, options) = match load_one(&args.file, &args.root, args.timeout) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let scenario = &scenario;
    let result = runner::run_one(scenario, &options, &|_| {});
    let events = &result.trace.events;
    let text = match args.format {
        TraceFormat::Text => format!(
            "{}\n{}\n",
            timeline::render(events),
            human::result_line(&result)
        ),
        TraceFormat::Json => {
            let document = serde_json::json!({
                "type": "trace",
                "version": json::FORMAT_VERSION,
                "name": scenario.name,
                "outcome": result.outcome,
                "hang_step": result.hang_step,
                "passed": result.passed,
                "events": events,
                "normalized": snapshot::normalized(scenario, &result),
            });
            format!("{document}\n")
        }
        TraceFormat::Chrome => {
            let pid = result.trace.redactions.pid.unwrap_or(0);
            let title = format!("termwatch: {}", scenario.name);
            let document = chrome::render(events, pid, &title, result.hang_step.as_deref());
            format!("{document}\n")
        }
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write the trace to {}: {e}", path.display())),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the trace: {e}")),
    };
    if let Err(message) = written {
        eprintln!("error: {message}");
        return exit_code::BAD_INPUT;
    }
    if args.output.is_some() || args.format != TraceFormat::Text {
        let _ = human::write_result(&mut std::io::stderr(), &result);
    }
    interrupted_exit().unwrap_or(if result.passed {
        exit_code::OK
    } else {
        exit_code::FAILED
    })
}
