use std::process::ExitCode;
use std::time::Duration;

use super::{CliError, ModelArgs};
use crate::bench::{kernel_gflops, matmul_gflops, throughput, SAMPLE_MESSAGES};
use crate::model::gemm_library;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    pub batch_sizes: Vec<usize>,
    /// Minimum seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Use candle's generic ops instead of the fused CPU kernels, to see what they save.
    #[arg(long)]
    pub reference: bool,
    /// Print the sample messages the measurement classifies, as a JSON array, and exit
    /// (for the side-by-side harness in bench/compare, which feeds the same texts to PyTorch).
    #[arg(long, hide = true)]
    pub print_messages: bool,
    /// Skip measuring the machine's matrix-multiply peak (the "% of peak" column is then
    /// left out): for repeated runs side by side.
    #[arg(long)]
    pub no_peak: bool,
}

pub fn run(a: BenchArgs) -> Result<ExitCode, CliError> {
    if a.print_messages {
        println!(
            "{}",
            serde_json::to_string(SAMPLE_MESSAGES).expect("serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let classifier = if a.reference {
        let device = crate::model::parse_device(a.model.device)?;
        crate::model::Classifier::load_reference(&a.model.model, &device)?
    } else {
        a.model.load()?
    };
    let min_time = Duration::from_secs_f64(a.seconds.max(0.1));
    let candle_peak = if a.no_peak {
        0.0
    } else {
        matmul_gflops(classifier.device(), min_time)?
    };
    let kernel_peak = if classifier.device().is_cpu() && !a.no_peak {
        kernel_gflops(min_time)
    } else {
        0.0
    };
    // With the int8 kernels the model's arithmetic runs at the int8 product's speed: that is
    // the peak its share is measured against.
    #[cfg(target_arch = "x86_64")]
    let int8_peak = if classifier.kernels().starts_with("int8") && !a.no_peak {
        2.0 * crate::model::int8_gmacs(2304, min_time).unwrap_or(0.0)
    } else {
        0.0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let int8_peak = 0.0;
    let peak = if int8_peak > 0.0 {
        int8_peak
    } else {
        candle_peak.max(kernel_peak)
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut rows = Vec::new();
    for &b in &a.batch_sizes {
        rows.push(throughput(
            &classifier,
            SAMPLE_MESSAGES,
            b.max(1),
            min_time,
            peak,
        )?);
    }
    if a.json {
        let v = serde_json::json!({
            "model": a.model.model.display().to_string(),
            "device": a.model.device.to_string(),
            "threads": threads,
            "matmul_peak_gflops": peak,
            "candle_matmul_gflops": candle_peak,
            "kernel_gemm_gflops": kernel_peak,
            "kernel_gemm_library": gemm_library(),
            "kernels": classifier.kernels(),
            "int8_gemm_gops": int8_peak,
            "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serialises"));
        return Ok(ExitCode::SUCCESS);
    }
    let kernels = if a.reference {
        "reference: candle generic ops"
    } else {
        classifier.kernels()
    };
    println!(
        "model {} on {} ({threads} threads, {kernels})",
        a.model.model.display(),
        a.model.device
    );
    print!(
        "f32 matmul measured: candle {candle_peak:.1} GFLOP/s, {} {kernel_peak:.1} GFLOP/s",
        gemm_library()
    );
    if int8_peak > 0.0 {
        print!("; int8 product {int8_peak:.1} GOP/s");
    }
    println!("; peak used below: {peak:.1}\n");
    println!(
        "{:>6}  {:>10}  {:>11}  {:>13}  {:>12}  {:>8}",
        "batch", "msgs/s", "tokens/msg", "tokenize time", "model GFLOP/s", "of peak"
    );
    for r in &rows {
        println!(
            "{:>6}  {:>10.1}  {:>11.1}  {:>12.1}%  {:>12.1}  {:>7.1}%",
            r.batch_size,
            r.messages_per_second,
            r.mean_tokens,
            r.tokenize_share * 100.0,
            r.model_gflops,
            r.share_of_peak * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
