//! The command-line entry points: `termwatch bench`, `termwatch compare` and the hidden
//! `termwatch __bench-role` that the bench re-executes for every process of an ipc/tcp sample.
//! Each is a clap `Args` struct and a `run_*` function returning the exit code.

use super::compare::compare;
use super::context::BenchContext;
use super::measure::{Runner, Sample};
use super::render::{
    comparison_markdown, comparison_svg, comparison_table, human_rate, terminal_table,
};
use super::results::{ResultFile, SampleSet, load_criterion_baseline, load_result_file};
use super::roles::{self, Attach, MAX_THROTTLE_PERCENT};
use super::suite::{Matrix, run_suite};
use super::workload::{
    Engine, Fan, STANDARD_SIZES, Transport, default_messages, parse_fan, parse_size,
};
use crate::errors::Ending;
use anyhow::Context as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// `termwatch bench`: measure the proxy engines against direct PUB→SUB.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Transports to measure (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Transport::ALL)]
    pub transport: Vec<Transport>,
    /// Message sizes, e.g. 16,256,1KiB,64KiB.
    #[arg(long, value_delimiter = ',', value_parser = parse_size,
          default_values_t = STANDARD_SIZES)]
    pub size: Vec<usize>,
    /// Engines; keep `direct` for the proxy/direct ratios.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Engine::ALL)]
    pub engine: Vec<Engine>,
    /// Publishers x subscribers, e.g. 1x1,4x1,1x4.
    #[arg(long, value_delimiter = ',', value_parser = parse_fan, default_value = "1x1")]
    pub fan: Vec<Fan>,
    /// Messages each publisher sends per sample [default: about 256 MiB of payload, between
    /// 10 000 and 1 000 000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..))]
    pub messages: Option<u64>,
    /// Samples per workload, interleaved across engines (10 a side is what `compare` needs to
    /// tell a 20% slowdown from noise on a loaded 2-core machine).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub repeat: u64,
    /// Write every sample, the medians and the ratios to this JSON file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Test only: lower every measured rate by this percentage (the receiver waits that much
    /// longer with the clock running), to check that `compare` catches a slowdown.
    #[arg(long, hide = true, default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=MAX_THROTTLE_PERCENT as i64))]
    pub throttle_percent: u8,
}

/// Runs `termwatch bench`; exit code 0, or 1 when some sample lost messages.
pub fn run_bench(args: &BenchArgs) -> anyhow::Result<Ending> {
    let matrix = Matrix {
        transports: dedup(&args.transport),
        sizes: dedup(&args.size),
        fans: dedup(&args.fan),
        engines: dedup(&args.engine),
    };
    let repeat = args.repeat as usize;
    let program = std::env::current_exe().context("finding the termwatch executable")?;
    let mut runner = Runner::new(&program, args.throttle_percent)
        .context("creating the scratch directory for ipc endpoints")?;
    crate::runner::signals::remove_on_interrupt(runner.scratch_dir().to_owned())
        .context("installing the Ctrl-C handler")?;
    let progress = progress_bar((matrix.len() * repeat) as u64);
    let messages = args.messages;
    let result = run_suite(
        &mut runner,
        &matrix,
        repeat,
        |size| messages.unwrap_or_else(|| default_messages(size)),
        |workload, sample| {
            progress.set_message(format!("{} {}", workload.id(), sample_summary(sample)));
            progress.inc(1);
        },
    );
    progress.finish_and_clear();
    let result = result.context("measuring a sample")?;
    print!("{}", bench_summary(&result));
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&result).context("serialising the results")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the results to {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    let lossy: usize = result
        .workloads
        .iter()
        .map(|w| w.samples.iter().filter(|s| s.lost() > 0).count())
        .sum();
    if lossy > 0 {
        eprintln!("termwatch bench: {lossy} sample(s) lost messages; their rates are not reported");
        return Ok(Ending::Failure);
    }
    Ok(Ending::Success)
}

fn dedup<T: Clone + PartialEq>(values: &[T]) -> Vec<T> {
    let mut unique: Vec<T> = Vec::new();
    for value in values {
        if !unique.contains(value) {
            unique.push(value.clone());
        }
    }
    unique
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} samples, {elapsed} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn sample_summary(sample: &Sample) -> String {
    match sample.msgs_per_s {
        Some(rate) => format!("{} msg/s", human_rate(rate)),
        None => format!("LOST {} of {}", sample.lost(), sample.expected),
    }
}

/// The bench's printed summary: medians per workload, then the ratios.
fn bench_summary(result: &ResultFile) -> String {
    let header = [
        "workload",
        "median msg/s",
        "median MB/s",
        "samples",
        "lossy",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = result
        .workloads
        .iter()
        .map(|w| {
            let lossy = w.samples.iter().filter(|s| s.lost() > 0).count();
            vec![
                w.id.clone(),
                w.median_msgs_per_s.map_or("-".into(), human_rate),
                w.median_mb_per_s
                    .map_or("-".into(), |mb| format!("{mb:.1}")),
                w.samples.len().to_string(),
                lossy.to_string(),
            ]
        })
        .collect();
    let mut out = terminal_table(&header, &rows);
    let load = |value: Option<f64>| value.map_or("?".to_string(), |v| format!("{v:.2}"));
    out.push_str(&format!(
        "load average {} at the start, {} at the end ({} cores)\n",
        load(result.load_average.start),
        load(result.load_average.end),
        result.machine.cores
    ));
    if !result.ratios.is_empty() {
        out.push('\n');
        let header = ["ratio (same repeat)", "median", "per repeat"]
            .map(String::from)
            .to_vec();
        let rows: Vec<Vec<String>> = result
            .ratios
            .iter()
            .map(|r| {
                let per_repeat: Vec<String> =
                    r.per_repeat.iter().map(|x| format!("{x:.2}")).collect();
                vec![
                    format!("{} / {}", r.id, engine_of(&r.baseline_id)),
                    r.median.map_or("-".into(), |m| format!("{m:.3}")),
                    per_repeat.join(" "),
                ]
            })
            .collect();
        out.push_str(&terminal_table(&header, &rows));
    }
    out
}

fn engine_of(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// `termwatch compare OLD NEW`: per workload the change, its interval and a verdict.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline: a `termwatch bench --output` file, or with --criterion-dir a baseline name.
    pub old: String,
    /// The candidate, in the same form as OLD.
    pub new: String,
    /// Changes within ± this are "no change", e.g. 5% or 2.5%.
    #[arg(long, default_value = "5%", value_parser = parse_threshold)]
    pub threshold: f64,
    /// Read OLD and NEW as criterion baselines (saved with `--save-baseline NAME`) under this
    /// directory, usually target/criterion.
    #[arg(long)]
    pub criterion_dir: Option<PathBuf>,
    /// Also write the comparison as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Also write the comparison as an SVG chart to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

fn parse_threshold(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(percent) if percent > 0.0 && percent < 100.0 => Ok(percent / 100.0),
        _ => Err(format!(
            "`{text}` is not a threshold between 0% and 100%, e.g. 5%"
        )),
    }
}

/// Runs `termwatch compare`; exit code 1 when a workload is `slower` (or NEW lost messages), 2
/// when an input cannot be read, else 0.
pub fn run_compare(args: &CompareArgs) -> anyhow::Result<Ending> {
    let load = |name: &str| -> anyhow::Result<SampleSet> {
        Ok(match &args.criterion_dir {
            Some(dir) => load_criterion_baseline(dir, name)?,
            None => load_result_file(std::path::Path::new(name))?.sample_set(),
        })
    };
    let (old, new) = match (load(&args.old), load(&args.new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("termwatch compare: {error:#}");
            return Ok(Ending::BadInput);
        }
    };
    let comparison = compare(&old, &new, args.threshold);
    if comparison.rows.is_empty() {
        eprintln!(
            "termwatch compare: {} and {} have no workload in common",
            args.old, args.new
        );
        return Ok(Ending::BadInput);
    }
    print!("{}", comparison_table(&comparison));
    if let Some(path) = &args.markdown {
        std::fs::write(path, comparison_markdown(&comparison))
            .with_context(|| format!("writing the Markdown report to {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, comparison_svg(&comparison))
            .with_context(|| format!("writing the SVG chart to {}", path.display()))?;
    }
    Ok(if comparison.regressed() {
        Ending::Failure
    } else {
        Ending::Success
    })
}

/// `termwatch __bench-role`: one process of an ipc/tcp sample (internal).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchRoleArgs {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum Role {
    /// Bind XSUB/XPUB, print `bound FRONTEND BACKEND`, run the engine until killed.
    Proxy {
        #[arg(long, value_enum)]
        engine: Engine,
        #[arg(long)]
        frontend: String,
        #[arg(long)]
        backend: String,
    },
    /// Bind or connect a PUB, print `bound ENDPOINT`, probe until `go` on stdin, send.
    Publish {
        #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
        bind: Option<String>,
        #[arg(long)]
        connect: Option<String>,
        #[arg(long)]
        id: u8,
        #[arg(long, value_parser = parse_size)]
        size: usize,
        #[arg(long)]
        messages: u64,
    },
    /// Connect a SUB, print `joined` once every publisher's probe arrived, then `report JSON`.
    Subscribe {
        #[arg(long, required = true)]
        connect: Vec<String>,
        #[arg(long)]
        publishers: u8,
        #[arg(long)]
        messages: u64,
        #[arg(long, default_value_t = 0)]
        throttle_percent: u8,
    },
}

/// Set by the stdin watcher when the runner writes `go`.
static GO: AtomicBool = AtomicBool::new(false);

/// Reads the runner's lines on stdin: `go` starts the publishers; end of input (the runner is
/// done, or died) ends the process at once, whatever it is doing.
fn watch_stdin() {
    std::thread::spawn(|| {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) if line.trim() == "go" => GO.store(true, Ordering::Release),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // SAFETY: _exit ends the process without running destructors or atexit handlers, which is
        // what a role wants: its sockets and context go with the process.
        unsafe { libc::_exit(0) }
    });
}

fn say(line: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .context("writing to the runner")
}

/// Waits for the stdin watcher to end the process.
fn wait_for_teardown() -> ! {
    loop {
        std::thread::park();
    }
}

/// Runs one role of a benchmark sample; it ends when its stdin closes (exit 0), or on an error
/// (returned, after which the caller exits 2).
pub fn run_bench_role(args: &BenchRoleArgs) -> anyhow::Result<Ending> {
    watch_stdin();
    let context = BenchContext::new().context("creating the role's context")?;
    match &args.role {
        Role::Proxy {
            engine,
            frontend,
            backend,
        } => {
            let sockets = roles::open_proxy(&context, frontend, backend)?;
            say(&format!(
                "bound {} {}",
                sockets.frontend_endpoint, sockets.backend_endpoint
            ))?;
            roles::run_proxy(&context, *engine, sockets)?;
        }
        Role::Publish {
            bind,
            connect,
            id,
            size,
            messages,
        } => {
            let attach = match (bind, connect) {
                (Some(endpoint), _) => Attach::Bind(endpoint.clone()),
                (None, Some(endpoint)) => Attach::Connect(endpoint.clone()),
                (None, None) => anyhow::bail!("the publisher needs --bind or --connect"),
            };
            let (mut socket, endpoint) = roles::open_publisher(&context, &attach)?;
            say(&format!("bound {endpoint}"))?;
            roles::publish(&mut socket, *id, *size, *messages, &GO)?;
            wait_for_teardown();
        }
        Role::Subscribe {
            connect,
            publishers,
            messages,
            throttle_percent,
        } => {
            let socket = roles::open_subscriber(&context, connect)?;
            let mut joined = Ok(());
            let report =
                roles::subscribe(&socket, *publishers, *messages, *throttle_percent, || {
                    joined = say("joined");
                })?;
            joined?;
            say(&format!("report {}", serde_json::to_string(&report)?))?;
            wait_for_teardown();
        }
    }
    wait_for_teardown()
}
