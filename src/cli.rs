//! The command line, with clap's derive (the arguments of `bench` live in [`crate::bench`],
//! those of the hidden child commands beside the code they start: [`ChildArgs`],
//! [`crate::guard::JANITOR`]). Each
//! command only turns its arguments into a configuration, calls the library, and ends with an
//! [`Ending`]; [`run_ending`] says how a run ended and [`exit_code`] alone makes exit codes.
//! A new command is a variant of [`Command`], its arguments struct and one arm of [`main`].

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::bench;
use crate::child::proof::EarlyVerdicts;
use crate::child::{self, ChildArgs};
use crate::errors::{Ending, InputErrors, exit_code};
use crate::events::RunEvent;
use crate::exec::{ExecPlan, StopWhen};
use crate::outcome::{Outcome, in_words};
use crate::partition::Partition;
use crate::program::ProgramSpec;
use crate::report::catalogue;
use crate::report::human::{self, HumanSink};
use crate::report::json::{self, JsonSink};
use crate::report::junit::JunitSink;
use crate::report::output::{Document, Target};
use crate::report::{Reporter, RunSummary, Sink};
use crate::runner::{self, RunOptions, signals, stress::Stress};
use crate::scenario::StopHow;
use crate::scenario::{Expect, Scenario, discover::discover};
use crate::trace::layer::install_subscriber;
use crate::trace::snapshot::{SnapshotMode, SnapshotOptions};
use crate::trace::{chrome, timeline};
use std::str::FromStr;

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
    #[command(name = child::protocol::RUN_SCENARIO, hide = true)]
    RunScenario(ChildArgs),
    /// Internal: removes what a run leaves behind when the run dies.
    #[command(name = crate::guard::JANITOR, hide = true)]
    Janitor {
        /// The run it cleans up after (`<pid>.<start time>`, base 36).
        owner: crate::run_dir::ProcessId,
    },
    /// Measure proxy throughput against direct PUB→SUB.
    Bench(bench::BenchArgs),
    /// Compare two benchmark results, or two engines of one; exit 1 when a workload got slower.
    Compare(bench::CompareArgs),
    /// Run a bus proxy (XSUB frontend, XPUB backend) until SIGINT or SIGTERM.
    Proxy(bench::ProxyArgs),
    /// Internal: one process of a benchmark sample.
    #[command(name = bench::ROLE_SUBCOMMAND, hide = true)]
    BenchRole(bench::RoleArgs),
    /// Run one program under a deadline and give it a verdict, with the stacks of every
    /// thread and the sockets still open when it hangs.
    Exec(ExecArgs),
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExpectFlag {
    /// The program and everything it started exit with code 0 within the deadline.
    Clean,
    /// It outlives its deadline.
    Hang,
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// How long the program may take to exit: after the stop is sent, or from the start with
    /// `--stop wait`.
    #[arg(long, value_parser = deadline, default_value = "10s")]
    deadline: Duration,
    /// How it is asked to end: `wait` (it ends by itself), `signal:NAME` (to its process
    /// group), `stdin-close`.
    #[arg(long, value_parser = StopHow::from_str, default_value = "wait")]
    stop: StopHow,
    /// Send the stop this long after the start [default: at once].
    #[arg(long, value_parser = deadline, conflicts_with = "stop_on_line")]
    stop_after: Option<Duration>,
    /// Send the stop at the first stdout line matching this regular expression (which must
    /// come within the deadline).
    #[arg(long)]
    stop_on_line: Option<String>,
    /// Turn the run into a regression check: exit 0 when the outcome is this, 1 when not
    /// [default: clean].
    #[arg(long, value_enum)]
    expect: Option<ExpectFlag>,
    /// Run it this many times and count the verdicts; one that varies is flaky (exit 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    #[command(flatten)]
    report: ReportArgs,
    /// A variable for the program, `KEY=VALUE` (repeatable).
    #[arg(long, value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// The program's working folder.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// With `--repeat`, every attempt's line.
    #[arg(long, short)]
    verbose: bool,
    /// The program and its arguments (after `--`).
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Lines for people.
    Human,
    /// JSON Lines, on stdout (human output goes to stderr) or to `--output`.
    Json,
    /// JUnit XML, on stdout (human output goes to stderr) or to `--output`.
    Junit,
}

/// Where the reports of `run` and `repro` go; any combination at once.
#[derive(Debug, Args)]
struct ReportArgs {
    /// Output format on stdout (human output then goes to stderr), or of `--output`.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Write the `--format` output to FILE instead of stdout (`-`: stdout); human output then
    /// stays on stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<OsString>,
    /// Also write JSON Lines to FILE (`-`: stdout).
    #[arg(long, value_name = "FILE")]
    json: Option<OsString>,
    /// Also write JUnit XML to FILE (`-`: stdout); the file is valid XML at every moment.
    #[arg(long, value_name = "FILE")]
    junit: Option<OsString>,
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

/// `--root`, checked to be a folder when given.
#[derive(Debug, Clone, Args)]
struct RootArg {
    /// The folder scenario names are relative to [default: scenarios].
    #[arg(long = "root", value_name = "DIR", value_parser = existing_folder)]
    root: Option<PathBuf>,
}

impl RootArg {
    fn get(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new("scenarios"))
    }
}

fn existing_folder(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.is_dir() {
        Ok(path)
    } else {
        Err("no such folder".to_owned())
    }
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A deadline: a duration such as `500ms`, never zero (every step would hang at once).
fn deadline(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a deadline must be longer than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Args)]
struct SelectArgs {
    /// Scenario files or folders (searched recursively for *.toml).
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    root: RootArg,
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

/// Proven hangs.
#[derive(Debug, Clone, Copy, Args)]
struct EarlyArgs {
    /// Wait for every hang's deadline, even where the hang is certain when its step starts
    /// (by default such a hang is declared at once, marked proven).
    #[arg(long, conflicts_with = "verify_proofs")]
    no_early: bool,
    /// Prove hangs but let every step run to its deadline anyway; a proven step that finishes
    /// is reported as an error of the harness.
    #[arg(long)]
    verify_proofs: bool,
}

impl EarlyArgs {
    fn mode(self) -> EarlyVerdicts {
        EarlyVerdicts::from_flags(self.no_early, self.verify_proofs)
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    select: SelectArgs,
    #[command(flatten)]
    early: EarlyArgs,
    /// Scenarios run at once [default: the number of cores].
    #[arg(long, short, value_parser = at_least_one)]
    jobs: Option<usize>,
    /// Replace every step's deadline, e.g. `500ms`.
    #[arg(long, value_parser = deadline)]
    timeout: Option<Duration>,
    #[command(flatten)]
    report: ReportArgs,
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
    #[command(flatten)]
    root: RootArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
    format: TraceFormat,
    /// Write the trace to FILE instead of stdout (`-`: stdout).
    #[arg(long, short, value_name = "FILE")]
    output: Option<OsString>,
    /// Replace every step's deadline.
    #[arg(long, value_parser = deadline)]
    timeout: Option<Duration>,
}

#[derive(Debug, Args)]
struct ReproArgs {
    /// The scenario file.
    file: PathBuf,
    #[command(flatten)]
    early: EarlyArgs,
    /// Run at most this many times, stopping at the first hang.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    #[command(flatten)]
    root: RootArg,
    /// Replace every step's deadline.
    #[arg(long, value_parser = deadline)]
    timeout: Option<Duration>,
    #[command(flatten)]
    report: ReportArgs,
}

/// Parses the command line, runs it and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::RunScenario(_)) {
        if let Some(Err(message)) = std::env::var(LOG_VARIABLE)
            .ok()
            .map(|v| check_log_filter(&v))
        {
            eprintln!("error: {message}");
            return exit_code(Ok(Ending::BadInput));
        }
        install_subscriber(None);
    }
    let ending = match cli.command {
        Command::RunScenario(args) => child::run(args),
        Command::Janitor { owner } => crate::guard::janitor_main(owner),
        Command::Check(select) => Ok(check(&select)),
        Command::List(args) => Ok(list(&args)),
        Command::Run(args) => Ok(run(&args)),
        Command::Repro(args) => Ok(repro(&args)),
        Command::Trace(args) => Ok(trace(&args)),
        Command::Bench(args) => bench::run_bench(&args),
        Command::Compare(args) => bench::run_compare(&args),
        Command::Proxy(args) => bench::run_proxy_command(&args),
        Command::BenchRole(args) => bench::run_bench_role(&args),
        Command::Exec(args) => Ok(exec(&args)),
    };
    exit_code(ending)
}

/// The variable that filters the harness's own logs.
const LOG_VARIABLE: &str = "TERMWATCH_LOG";

/// Log levels, as `TERMWATCH_LOG` takes them.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a `TERMWATCH_LOG` value: comma-separated levels or `target=level` directives.
fn check_log_filter(value: &str) -> Result<(), String> {
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{LOG_VARIABLE}: `{directive}` is not a level ({}) nor a `target=level` directive",
                LOG_LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| ())
        .map_err(|e| format!("{LOG_VARIABLE}: {e}"))
}

/// Writes `lines` to stdout; a reader that went away (`| head -1`) ends the command quietly.
fn print_lines(lines: impl IntoIterator<Item = String>) -> Ending {
    let mut out = std::io::stdout().lock();
    for line in lines {
        match writeln!(out, "{line}") {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ending::Success,
            Err(e) => {
                eprintln!("error: cannot write to stdout: {e}");
                return Ending::Failure;
            }
        }
    }
    Ending::Success
}

/// `?` for functions that end with an [`Ending`]: the error was reported already.
macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(ending) => return ending,
        }
    };
}

fn check(select: &SelectArgs) -> Ending {
    let scenarios = attempt!(load(select).map(|s| shard(s, select.partition)));
    print_lines([format!("{} scenario(s) valid", scenarios.len())])
}

fn list(args: &ListArgs) -> Ending {
    let select = &args.select;
    let scenarios = attempt!(load(select).map(|s| shard(s, select.partition)));
    if args.format == ListFormat::Markdown {
        return print_lines([catalogue::render_markdown(&scenarios)]);
    }
    print_lines(scenarios.iter().map(|s| {
        format!(
            "{}\t{}\t{}",
            human::escaped(&s.name),
            human::escaped(&in_words(s.expect, s.expect_hang_at.as_deref())),
            s.file.display()
        )
    }))
}

/// Loads and filters scenarios, or prints every input error.
fn load(select: &SelectArgs) -> Result<Vec<Scenario>, Ending> {
    let scenarios = discover(&select.paths, select.root.get())
        .map_err(|errors| report_input_errors(&errors))?;
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

fn report_input_errors(errors: &InputErrors) -> Ending {
    for e in &errors.0 {
        eprintln!("{}", e.render());
    }
    eprintln!("{} error(s) in the input; nothing ran", errors.0.len());
    Ending::BadInput
}

fn run_options(
    root: &Path,
    jobs: Option<usize>,
    timeout: Option<Duration>,
    snapshots: SnapshotOptions,
) -> Result<RunOptions, Ending> {
    let executable = std::env::current_exe().map_err(|e| {
        eprintln!("error: cannot find termwatch's own executable to run scenarios: {e}");
        Ending::BadInput
    })?;
    if let Err(e) = signals::install() {
        eprintln!("error: cannot install the Ctrl-C handler: {e}");
        return Err(Ending::BadInput);
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(RunOptions {
        jobs,
        timeout,
        root: root.to_owned(),
        executable,
        snapshots,
        early: EarlyVerdicts::default(),
        requirements: Default::default(),
    })
}

/// How a run ended: stopped by a signal, quietly done when the reader of stdout went away,
/// failed when a scenario missed its expectation or a report could not be written.
fn run_ending(run: &RunSummary) -> Ending {
    match signals::interrupted_by() {
        Some(signal) => Ending::Signal(signal),
        None if run.stdout_closed => Ending::Success,
        None if run.summary.failed > 0 || run.write_failed => Ending::Failure,
        None => Ending::Success,
    }
}

/// The report sinks `report` asks for (besides the human output) and whether the human output
/// keeps stdout; a bad combination or a destination that cannot be opened is bad input.
fn report_sinks(
    report: &ReportArgs,
    with_counts: bool,
    properties: Vec<(&'static str, String)>,
) -> Result<(Vec<Box<dyn Sink>>, bool), Ending> {
    let target = |arg: &Option<OsString>| arg.as_deref().map(Target::from_arg);
    let mut json: Vec<Target> = target(&report.json).into_iter().collect();
    let mut junit: Vec<Target> = target(&report.junit).into_iter().collect();
    let formatted = target(&report.output).unwrap_or(Target::Stdout);
    match report.format {
        Format::Human if report.output.is_some() => {
            eprintln!("error: --output needs --format json or --format junit");
            return Err(Ending::BadInput);
        }
        Format::Human => {}
        Format::Json => json.push(formatted),
        Format::Junit => junit.push(formatted),
    }
    let on_stdout = json.iter().chain(&junit).filter(|t| t.is_stdout()).count();
    if on_stdout > 1 {
        eprintln!(
            "error: only one report can go to stdout (see --format, --output, --json, --junit)"
        );
        return Err(Ending::BadInput);
    }
    let opened = |result: std::io::Result<Box<dyn Sink>>, target: &Target| {
        result.map_err(|e| {
            eprintln!("error: cannot write a report to {target}: {e}");
            Ending::BadInput
        })
    };
    // JUnit files are only checked when opened, JSON files replaced at once: JUnit first, so
    // that a bad JUnit path leaves every file as it was.
    let mut sinks = Vec::new();
    for target in junit {
        let sink = JunitSink::open(target.clone(), properties.clone())
            .map(|s| Box::new(s) as Box<dyn Sink>);
        sinks.push(opened(sink, &target)?);
    }
    for target in json {
        let sink =
            JsonSink::open(target.clone(), with_counts).map(|s| Box::new(s) as Box<dyn Sink>);
        sinks.push(opened(sink, &target)?);
    }
    Ok((sinks, on_stdout == 0))
}

/// The suite-level facts of a run, as JUnit properties.
fn junit_properties(args: &RunArgs, jobs: usize) -> Vec<(&'static str, String)> {
    let mut properties = common_properties(jobs, args.repeat);
    properties.push(("stress", args.stress.to_string()));
    if let Some(partition) = args.select.partition {
        properties.push(("partition", partition.to_string()));
    }
    properties
}

fn common_properties(jobs: usize, repeat: u32) -> Vec<(&'static str, String)> {
    vec![
        ("termwatch.version", env!("CARGO_PKG_VERSION").to_owned()),
        ("jobs", jobs.to_string()),
        ("repeat", repeat.to_string()),
    ]
}

fn run(args: &RunArgs) -> Ending {
    let scenarios = match load(&args.select) {
        Ok(s) if s.is_empty() => {
            eprintln!("error: no scenario matches the filter");
            return Ending::BadInput;
        }
        Ok(s) => shard(s, args.select.partition),
        Err(ending) => return ending,
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
    let options = RunOptions {
        early: args.early.mode(),
        ..attempt!(run_options(
            args.select.root.get(),
            args.jobs,
            args.timeout,
            snapshots
        ))
    };
    let repeat = args.repeat as usize;
    let properties = junit_properties(args, options.jobs);
    let (mut sinks, human_on_stdout) = attempt!(report_sinks(&args.report, repeat > 1, properties));
    sinks.insert(
        0,
        Box::new(HumanSink::new(human_on_stdout, args.verbose, repeat)),
    );
    let attempts: Vec<Scenario> = scenarios
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.clone(), repeat))
        .collect();
    let names = scenarios.iter().map(|s| s.name.clone()).collect();
    let mut reporter = Reporter::new(names, repeat, sinks);
    let stress = args
        .stress
        .then(|| Stress::start(std::thread::available_parallelism().map_or(1, |n| n.get())));
    let not_started = runner::run_all(&attempts, &options, |event| {
        reporter.on_event(event);
        if reporter.stdout_closed() {
            signals::stop();
        }
    });
    drop(stress);
    let not_started: Vec<String> = not_started
        .into_iter()
        .map(|i| attempts[i].name.clone())
        .collect();
    run_ending(&reporter.finish(&not_started))
}

/// Loads the one scenario of `repro` and `trace`, and options to run it alone, without
/// snapshots.
fn load_one(
    file: &Path,
    root: &RootArg,
    timeout: Option<Duration>,
) -> Result<(Scenario, RunOptions), Ending> {
    let select = SelectArgs {
        paths: vec![file.to_owned()],
        root: root.clone(),
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
        return Err(Ending::BadInput);
    }
    let snapshots = SnapshotOptions {
        mode: SnapshotMode::Off,
        ..SnapshotOptions::default()
    };
    let options = run_options(root.get(), Some(1), timeout, snapshots)?;
    Ok((scenarios.swap_remove(0), options))
}

fn repro(args: &ReproArgs) -> Ending {
    let (scenario, options) = attempt!(load_one(&args.file, &args.root, args.timeout));
    let options = RunOptions {
        early: args.early.mode(),
        ..options
    };
    let properties = common_properties(1, args.repeat);
    let (sinks, human_on_stdout) =
        attempt!(report_sinks(&args.report, args.repeat > 1, properties));
    let say = |text: String| {
        // The run goes on when the terminal is gone; the reports say what happened.
        let _ = if human_on_stdout {
            writeln!(std::io::stdout(), "{text}")
        } else {
            writeln!(std::io::stderr(), "{text}")
        };
    };
    say(format!(
        "{}: {}",
        human::escaped(&scenario.name),
        human::escaped_block(scenario.description.trim(), "  ")
    ));
    say(format!(
        "expected: {}",
        human::escaped(&in_words(
            scenario.expect,
            scenario.expect_hang_at.as_deref()
        ))
    ));
    let reporter = RefCell::new(Reporter::new(
        vec![scenario.name.clone()],
        args.repeat as usize,
        sinks,
    ));
    for attempt in 1..=args.repeat.max(1) {
        say(format!("\nrun {attempt}:"));
        let started = Instant::now();
        let at = || started.elapsed().as_secs_f64() * 1000.0;
        let send = |event: RunEvent| {
            match &event {
                RunEvent::PhaseStarted {
                    label, timeout_ms, ..
                } => say(format!(
                    "  {:>9.1} ms  ▶ {} (deadline {timeout_ms} ms)",
                    at(),
                    human::escaped(label)
                )),
                RunEvent::PhaseFinished {
                    label, duration_ms, ..
                } => say(format!(
                    "  {:>9.1} ms  ✓ {} ({duration_ms:.2} ms)",
                    at(),
                    human::escaped(label)
                )),
                RunEvent::ScenarioStarted { .. } | RunEvent::ScenarioFinished(_) => {}
            }
            reporter.borrow_mut().on_event(&event);
        };
        let result = runner::run_one(&scenario, &options, &send);
        say(human::result_line(&result));
        if result.outcome != Outcome::Clean || !result.passed {
            let mut details = Vec::new();
            let _ = human::write_details(&mut details, &result, &result.failures);
            say(String::from_utf8_lossy(&details).trim_end().to_owned());
        }
        let hung = result.outcome == Outcome::Hang;
        send(RunEvent::ScenarioFinished(Box::new(result)));
        if hung {
            say(format!(
                "\nstopped at the first hang (run {attempt} of at most {})",
                args.repeat
            ));
            break;
        }
        if signals::interrupted_by().is_some() || reporter.borrow().stdout_closed() {
            break;
        }
    }
    run_ending(&reporter.into_inner().finish(&[]))
}

/// `termwatch trace`: runs one scenario once and writes its trace in the chosen format.
fn trace(args: &TraceArgs) -> Ending {
    let (scenario, options) = attempt!(load_one(&args.file, &args.root, args.timeout));
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
                "normalized": result.normalized_trace(scenario),
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
    let target = args
        .output
        .as_deref()
        .map_or(Target::Stdout, Target::from_arg);
    let written = Document::open(&target).and_then(|mut d| d.write_last(&text));
    match written {
        Err(e) if target.is_stdout() && e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: cannot write the trace to {target}: {e}");
            return Ending::BadInput;
        }
        Ok(()) => {}
    }
    if !target.is_stdout() || args.format != TraceFormat::Text {
        let _ = human::write_result(&mut std::io::stderr(), &result);
    }
    let mut reporter = Reporter::new(vec![scenario.name.clone()], 1, Vec::new());
    reporter.on_event(&RunEvent::ScenarioFinished(Box::new(result)));
    run_ending(&reporter.finish(&[]))
}

/// `termwatch exec`: one program, `--repeat` times, reported like a scenario by the same sinks.
fn exec(args: &ExecArgs) -> Ending {
    let when = match (&args.stop_on_line, args.stop_after) {
        (Some(_), _) | (_, Some(_)) if args.stop == StopHow::Wait => {
            eprintln!(
                "error: --stop-after and --stop-on-line need --stop signal:NAME or --stop stdin-close (with `wait` the deadline counts from the start)"
            );
            return Ending::BadInput;
        }
        (Some(pattern), _) => match regex::Regex::new(pattern) {
            Ok(re) => StopWhen::OnLine(re),
            Err(e) => {
                eprintln!("error: --stop-on-line: {e}");
                return Ending::BadInput;
            }
        },
        (None, after) => StopWhen::After(after.unwrap_or_default()),
    };
    let plan = ExecPlan {
        name: args.command.join(" "),
        spec: ProgramSpec {
            command: args.command.clone(),
            env: args.env.clone(),
            cwd: args.cwd.clone(),
        },
        deadline: args.deadline,
        stop: args.stop,
        when,
        expect: match args.expect {
            Some(ExpectFlag::Hang) => Expect::Hang,
            Some(ExpectFlag::Clean) | None => Expect::Clean,
        },
    };
    let executable = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find termwatch's own executable (the janitor runs it): {e}");
            return Ending::BadInput;
        }
    };
    if let Err(e) = signals::install() {
        eprintln!("error: cannot install the Ctrl-C handler: {e}");
        return Ending::BadInput;
    }
    crate::program::become_subreaper();
    let repeat = args.repeat as usize;
    let properties = common_properties(1, args.repeat);
    let (mut sinks, human_on_stdout) = attempt!(report_sinks(&args.report, repeat > 1, properties));
    sinks.insert(
        0,
        Box::new(HumanSink::new(human_on_stdout, args.verbose, repeat)),
    );
    let reporter = std::cell::RefCell::new(Reporter::new(vec![plan.name.clone()], repeat, sinks));
    for _ in 0..repeat {
        let send = |event: RunEvent| reporter.borrow_mut().on_event(&event);
        match crate::exec::run_once(&plan, &executable, &send) {
            Ok(result) => send(RunEvent::ScenarioFinished(Box::new(result))),
            Err(message) => {
                eprintln!("error: {message}");
                return Ending::BadInput;
            }
        }
        if signals::interrupted_by().is_some() || reporter.borrow().stdout_closed() {
            break;
        }
    }
    run_ending(&reporter.into_inner().finish(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filters_are_levels_or_directives() {
        for good in [
            "debug",
            "WARN",
            "termwatch=debug,warn",
            "termwatch::runner=trace",
            "",
        ] {
            assert!(check_log_filter(good).is_ok(), "{good}");
        }
        for bad in ["verbose", "debug,loud", "termwatch=loud"] {
            let error = check_log_filter(bad).unwrap_err();
            assert!(error.starts_with("TERMWATCH_LOG: "), "{error}");
        }
    }

    #[test]
    fn deadlines_jobs_and_roots_are_checked() {
        assert!(deadline("0s").is_err());
        assert_eq!(deadline("500ms"), Ok(Duration::from_millis(500)));
        assert!(at_least_one("0").is_err());
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(existing_folder("/nonexistent/folder").is_err());
        assert!(existing_folder("src").is_ok());
    }
}
