//! The `moat` binary: command-line wiring only. Each subcommand lives in its own module.

mod admin_keys;
mod audit;
mod audit_key;
mod cli;
mod demo;
mod detect;
mod keys;
mod report;
mod route;
mod serve;
mod verdicts;

use clap::Parser;
use cli::{
    AuditCommand, Cli, Command, ConfigCommand, DetectCommand, RouteCommand, WorkflowsCommand,
};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_guard = init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Keys(cmd) => keys::run(cmd).await,
            Command::AdminKeys(cmd) => admin_keys::run(cmd).await,
            Command::Config(ConfigCommand::Check(args)) => serve::check(&args.config),
            Command::Detect(DetectCommand::Replay(args)) => detect::replay(args),
            Command::Detect(DetectCommand::Verdicts(args)) => verdicts::run(args).await,
            Command::Workflows(WorkflowsCommand::List(args)) => route::workflows(args).await,
            Command::Workflows(WorkflowsCommand::Add(args)) => route::add(*args).await,
            Command::Workflows(WorkflowsCommand::Remove(args)) => route::remove(args).await,
            Command::Route(RouteCommand::Explain(args)) => route::explain(args).await,
            Command::Audit(AuditCommand::Verify(args)) => audit::verify(args).await,
            Command::Audit(AuditCommand::Export(args)) => audit::export(args).await,
            Command::Audit(AuditCommand::Prune(args)) => audit::prune(args).await,
            Command::Audit(AuditCommand::Checkpoint(args)) => audit::checkpoint(args).await,
            Command::Audit(AuditCommand::Pubkey(args)) => audit::pubkey(args),
            Command::Report(args) => report::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `MOAT_LOG` filters them (`info` by default), `MOAT_LOG_FORMAT=json` makes
/// them JSON lines for log shippers.
fn init_logging() -> moat_proxy::LogGuard {
    let filter = std::env::var("MOAT_LOG").unwrap_or_else(|_| "info".to_string());
    let json = std::env::var("MOAT_LOG_FORMAT").is_ok_and(|f| f == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    moat_proxy::init_logging(std::io::stderr(), &filter, json, ansi)
}
