use std::process::ExitCode;

use clap::Parser;

// Model code allocates and frees large activation and gradient buffers at every step; glibc
// returns those to the kernel each time (page faults, high system time), mimalloc reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    parley::model::init_cpu_backend();
    let cli = parley::cli::Cli::parse();
    match parley::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("parley: error: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
