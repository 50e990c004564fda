use std::process::ExitCode;

use clap::Parser;

// Model code allocates and frees large activation and gradient buffers at every step; glibc
// returns those to the kernel each time (page faults, high system time), mimalloc reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = parley::cli::Cli::parse();
    // Logging first, so that what the backend reports while loading is logged too. Neither
    // starts a thread, as `init_cpu_backend` needs.
    if let Err(e) = parley::telemetry::init(cli.log_format) {
        eprintln!("parley: error: {e}");
        return ExitCode::FAILURE;
    }
    parley::model::init_cpu_backend();
    parley::model::set_cpu_kernels(cli.cpu_kernels);
    match parley::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("parley: error: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
