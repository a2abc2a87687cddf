//! The command-line entry points `termwatch bench` and `termwatch compare`: each a clap `Args`
//! struct and a `run_*` function returning how the command ended ([`Ending`], which
//! [`crate::errors::exit_code`] maps to the exit code).

use super::compare::{Comparison, compare, compare_paired};
use super::external::{ExternalProxy, parse_proxy_definition};
use super::measure::{Runner, Sample, Throttle};
use super::render::{
    comparison_markdown, comparison_svg, comparison_table, human_rate, terminal_table,
};
use super::results::{ResultFile, SampleSet, load_criterion_baseline, load_result_file};
use super::roles::MAX_THROTTLE_PERCENT;
use super::suite::{Matrix, run_suite};
use super::workload::{
    Engine, Fan, STANDARD_SIZES, Transport, default_messages, parse_fan, parse_size,
};
use crate::errors::Ending;
use anyhow::Context as _;
use std::io::IsTerminal;
use std::path::PathBuf;

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
    /// Engines: direct, zmq_proxy, steerable, forwarder, or the NAME of a --proxy; keep `direct`
    /// for the proxy/direct ratios [default: every built-in engine, then every --proxy].
    #[arg(long, value_delimiter = ',', value_parser = Engine::parse)]
    pub engine: Vec<Engine>,
    /// An external proxy program as one more engine, NAME=COMMAND (repeatable). COMMAND is run
    /// with `sh -c` for every ipc/tcp sample, with `{frontend}` and `{backend}` replaced by the
    /// endpoints it must bind (XSUB-like and XPUB-like); it is ready once both accept
    /// connections, and is stopped with SIGTERM (SIGKILL after 2 s) after the sample.
    #[arg(long = "proxy", value_name = "NAME=COMMAND", value_parser = parse_proxy_definition)]
    pub proxies: Vec<ExternalProxy>,
    /// NAME=TEXT: the --proxy NAME is ready once a line of its stdout contains TEXT, instead of
    /// once its endpoints accept connections (repeatable).
    #[arg(long = "proxy-ready", value_name = "NAME=TEXT", value_parser = parse_ready_line)]
    pub proxy_ready: Vec<(String, String)>,
    /// Publishers x subscribers, e.g. 1x1,4x1,1x4.
    #[arg(long, value_delimiter = ',', value_parser = parse_fan, default_value = "1x1")]
    pub fan: Vec<Fan>,
    /// Messages each publisher sends per sample [default: about 256 MiB of payload, between
    /// 10 000 and 1 000 000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..))]
    pub messages: Option<u64>,
    /// Samples per workload, interleaved across engines (10 a side is what `compare OLD NEW`
    /// needs to tell a 20% slowdown from noise on a loaded 2-core machine; `compare --engines
    /// A,B` needs 10 of 1–1.5 s each on a quiet one, or about 20 short ones on a busy one, and
    /// says how many more an inconclusive result calls for).
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
    /// Test only: apply --throttle-percent to this engine's samples only (for an A/B check).
    #[arg(long, hide = true, value_parser = Engine::parse)]
    pub throttle_engine: Option<Engine>,
}

fn parse_ready_line(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, line)) if !name.trim().is_empty() && !line.is_empty() => {
            Ok((name.trim().to_string(), line.to_string()))
        }
        _ => Err(format!("`{text}` is not NAME=TEXT")),
    }
}

/// The external proxies with their ready lines, and the engines to measure; a problem with the
/// flags as a sentence.
fn engines_and_proxies(args: &BenchArgs) -> Result<(Vec<Engine>, Vec<ExternalProxy>), String> {
    let mut proxies: Vec<ExternalProxy> = Vec::new();
    for proxy in &args.proxies {
        if proxies.iter().any(|p| p.name == proxy.name) {
            return Err(format!("--proxy `{}` is defined twice", proxy.name));
        }
        proxies.push(proxy.clone());
    }
    for (name, line) in &args.proxy_ready {
        let proxy = proxies
            .iter_mut()
            .find(|p| &p.name == name)
            .ok_or_else(|| format!("--proxy-ready names `{name}`, which no --proxy defines"))?;
        proxy.ready_line = Some(line.clone());
    }
    let engines = if args.engine.is_empty() {
        Engine::BUILT_IN
            .into_iter()
            .chain(proxies.iter().map(|p| Engine::External(p.name.clone())))
            .collect()
    } else {
        dedup(&args.engine)
    };
    let named = |engine: &Engine| match engine {
        Engine::External(name) => proxies.iter().any(|p| &p.name == name),
        _ => true,
    };
    if let Some(unknown) = engines.iter().find(|engine| !named(engine)) {
        return Err(format!(
            "unknown engine `{unknown}`: the built-in engines are direct, zmq_proxy, steerable \
             and forwarder; define others with --proxy {unknown}=COMMAND"
        ));
    }
    if let Some(unused) = proxies
        .iter()
        .find(|p| !engines.contains(&Engine::External(p.name.clone())))
    {
        return Err(format!("--proxy `{}` is not in --engine", unused.name));
    }
    if let Some(engine) = &args.throttle_engine
        && !engines.contains(engine)
    {
        return Err(format!("--throttle-engine `{engine}` is not measured"));
    }
    if !proxies.is_empty() && args.transport.iter().all(|t| *t == Transport::Inproc) {
        return Err(
            "external proxies run over ipc and tcp only: add --transport ipc or tcp".into(),
        );
    }
    Ok((engines, proxies))
}

/// Runs `termwatch bench`; exit code 0, 1 when some sample lost messages, 2 on bad flags or a
/// sample that could not be measured.
pub fn run_bench(args: &BenchArgs) -> anyhow::Result<Ending> {
    let (engines, proxies) = match engines_and_proxies(args) {
        Ok(found) => found,
        Err(problem) => {
            eprintln!("termwatch bench: {problem}");
            return Ok(Ending::BadInput);
        }
    };
    let matrix = Matrix {
        transports: dedup(&args.transport),
        sizes: dedup(&args.size),
        fans: dedup(&args.fan),
        engines,
    };
    let repeat = args.repeat as usize;
    let program = std::env::current_exe().context("finding the termwatch executable")?;
    let throttle = Throttle {
        percent: args.throttle_percent,
        engine: args.throttle_engine.clone(),
    };
    let mut runner = Runner::new(&program, throttle, proxies)
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
    let mut lossy = 0;
    for workload in &result.workloads {
        for (index, sample) in workload.samples.iter().enumerate() {
            if sample.lost() > 0 {
                lossy += 1;
                eprintln!(
                    "termwatch bench: {}, repeat {}: lost {} of {} messages",
                    workload.id,
                    index + 1,
                    sample.lost(),
                    sample.expected
                );
            }
        }
    }
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

/// `termwatch compare OLD NEW` (two runs) or `termwatch compare FILE --engines A,B` (two engines
/// of one run): per workload the change, its interval and a verdict.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline: a `termwatch bench --output` file, or with --criterion-dir a baseline name;
    /// with --engines, the one result file holding both engines.
    pub old: String,
    /// The candidate, in the same form as OLD (not with --engines).
    #[arg(required_unless_present = "engines", conflicts_with = "engines")]
    pub new: Option<String>,
    /// A,B: judge engine B against engine A from their paired samples (same repeat) in one
    /// result file (Wilcoxon signed-rank on the per-repeat ratios B/A).
    #[arg(long, value_delimiter = ',', num_args = 1, value_parser = Engine::parse,
          conflicts_with = "criterion_dir")]
    pub engines: Vec<Engine>,
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
    let comparison = match (&args.new, args.engines.as_slice()) {
        (None, [a, b]) => {
            let file = match load_result_file(std::path::Path::new(&args.old)) {
                Ok(file) => file,
                Err(error) => return Ok(input_error(&error)),
            };
            match compare_paired(&file, a, b, args.threshold) {
                Ok(comparison) => comparison,
                Err(error) => return Ok(input_error(&format!("{}: {error}", args.old))),
            }
        }
        (None, engines) => {
            return Ok(input_error(&format!(
                "--engines takes two engines, A,B (got {})",
                engines.len()
            )));
        }
        (Some(new), _) => {
            let load = |name: &str| -> anyhow::Result<SampleSet> {
                Ok(match &args.criterion_dir {
                    Some(dir) => load_criterion_baseline(dir, name)?,
                    None => load_result_file(std::path::Path::new(name))?.sample_set(),
                })
            };
            let (old, new_set) = match (load(&args.old), load(new)) {
                (Ok(old), Ok(new)) => (old, new),
                (Err(error), _) | (_, Err(error)) => return Ok(input_error(&format!("{error:#}"))),
            };
            let comparison = compare(&old, &new_set, args.threshold);
            if comparison.rows.is_empty() {
                return Ok(input_error(&format!(
                    "{} and {new} have no workload in common",
                    args.old
                )));
            }
            comparison
        }
    };
    write_comparison(args, &comparison)?;
    Ok(if comparison.regressed() {
        Ending::Failure
    } else {
        Ending::Success
    })
}

fn input_error(error: &dyn std::fmt::Display) -> Ending {
    eprintln!("termwatch compare: {error}");
    Ending::BadInput
}

/// Prints the table and writes the Markdown and SVG files asked for.
fn write_comparison(args: &CompareArgs, comparison: &Comparison) -> anyhow::Result<()> {
    print!("{}", comparison_table(comparison));
    if let Some(path) = &args.markdown {
        std::fs::write(path, comparison_markdown(comparison))
            .with_context(|| format!("writing the Markdown report to {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, comparison_svg(comparison))
            .with_context(|| format!("writing the SVG chart to {}", path.display()))?;
    }
    Ok(())
}
