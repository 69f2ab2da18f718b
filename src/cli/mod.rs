//! The `oddity` command line: one clap subcommand per module file.
//!
//! `src/bin/oddity.rs` calls [`run`]; errors come back as [`crate::Error`] and the binary
//! prints them to stderr and exits with code 2 (clap's own usage errors also exit with 2).
//! A new subcommand is a variant of [`Command`] with its `Args` struct in its own file.

pub mod bench;
pub mod config;
pub mod demo;
pub mod info;
pub mod metrics;
pub mod mlsad;
pub mod predict;
pub mod train;
pub mod calibrate;
pub mod experiment;
pub mod report;

use crate::error::Result;
use clap::{Parser, Subcommand};

/// Deep anomaly detection on images.
#[derive(Debug, Parser)]
#[command(name = "oddity", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// AUROC (and ECE, MCE, Brier for probabilities) of a CSV of scores and labels.
    Metrics(metrics::MetricsArgs),
    /// Generate defect textures (or use --data), train, calibrate, evaluate and write a report: the whole pipeline.
    Demo(demo::DemoArgs),
    /// Train a thesis base model (svdd, hsc, logistic, fcdd, ssim, unet) on Fashion-MNIST, CIFAR-10 or MVTec-layout data.
    Train(train::TrainArgs),
    /// Score images with a trained, calibrated model folder: probabilities, p-values, decisions, heatmaps.
    Predict(predict::PredictArgs),
    /// The GPU adapter oddity uses (honours ODDITY_BACKEND and ODDITY_ADAPTER) and its limits.
    Info(info::InfoArgs),
    /// MLSAD: multi-level structure anomaly detection (train, eval, samples).
    Mlsad(mlsad::MlsadArgs),
    /// Training-step times of the benchmark workloads (median of N waited steps), optionally per kernel.
    Bench(bench::BenchArgs),
    /// Calibrate a trained model (platt, beta or head) on its calibration split and synthetic anomalies.
    Calibrate(calibrate::CalibrateArgs),
    /// Train, calibrate and evaluate the thesis's grid of losses x methods x classes x seeds.
    Experiment(experiment::ExperimentArgs),
    /// Score a trained, calibrated model folder on its test split and write report.html, report.md and plots.
    Report(report::ReportArgs),
}

/// Parses the process arguments and runs the chosen subcommand.
/// `--config FILE.toml` (any command) supplies flags the command line leaves out; commands with
/// an `--out` folder write their resolved arguments there (see [`config`]).
pub fn run() -> Result<()> {
    let argv = config::expand_config_args(std::env::args_os().collect())?;
    let cli = Cli::parse_from(argv);
    config::write_resolved(&cli.command)?;
    execute(cli)
}

/// Runs an already parsed command line, writing results to stdout.
pub fn execute(cli: Cli) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Metrics(args) => metrics::run(&args, &mut out),
        Command::Info(args) => info::run(&args, &mut out),
        Command::Demo(args) => demo::run(&args, &mut out),
        Command::Train(args) => train::run(&args, &mut out),
        Command::Mlsad(args) => mlsad::run(&args, &mut out),
        Command::Bench(args) => bench::run(&args, &mut out),
        Command::Calibrate(args) => calibrate::run(&args, &mut out),
        Command::Experiment(args) => experiment::run(&args, &mut out),
        Command::Predict(args) => predict::run(&args, &mut out),
        Command::Report(args) => report::run(&args, &mut out),
    }
}
