//! `valex bench`: throughput of the candle backend on random-weight models of public shapes
//! (plain forward, layers only, statistics, zero-ablation), for comparison with
//! `shared/bench/torch_baseline.py` on the same machine (docs/performance.md).

use valex_backend_candle::bench::{BenchSpec, SHAPES, compute_threads, run};
use valex_backend_candle::{DTypeName, DeviceSpec};

use crate::args::BenchArgs;
use crate::exit::{CliError, ExitCode};
use crate::write_stdout;

pub(crate) fn bench(args: &BenchArgs) -> Result<(), CliError> {
    let shape = *SHAPES
        .iter()
        .find(|s| s.name == args.shape)
        .ok_or_else(|| {
            CliError::usage(format!(
                "--shape {}: known shapes are {}",
                args.shape,
                SHAPES.map(|s| s.name).join(", ")
            ))
        })?;
    let dtype: DTypeName = serde_json::from_value(serde_json::json!(args.dtype)).map_err(|_| {
        CliError::usage(format!("--dtype {}: expected f32, bf16 or f16", args.dtype))
    })?;
    let device = DeviceSpec::parse(&args.device)
        .map_err(|e| CliError::usage(format!("--device: {}", e.message)))?
        .open()
        .map_err(|e| CliError::new(ExitCode::Input, e))?;
    if args.batch == 0 || args.seq < 2 || args.iters == 0 {
        return Err(CliError::usage(
            "--batch and --iters must be at least 1, --seq at least 2",
        ));
    }
    let spec = BenchSpec {
        shape,
        batch: args.batch,
        seq: args.seq,
        iters: args.iters,
        dtype: dtype.dtype(),
        device,
        modes: args.modes.clone(),
        profile: args.profile,
    };
    let rows = run(&spec).map_err(|e| CliError::new(ExitCode::from(e.class), e))?;
    write_stdout(&format!(
        "valex {} shape {} batch {}x{} dtype {} device {} threads {}",
        valex_core::VALEX_VERSION,
        shape.name,
        args.batch,
        args.seq,
        args.dtype,
        args.device,
        compute_threads()
    ));
    for r in &rows {
        let peak = r
            .peak_rss_mib
            .map_or_else(String::new, |m| format!(", peak RSS {m:.0} MiB"));
        write_stdout(&format!(
            "  {:7} {:>12.0} tok/s  ({} tokens in {:.3} s{peak})",
            r.mode, r.tokens_per_s, r.tokens, r.seconds
        ));
    }
    for r in &rows {
        let Some(p) = &r.profile else { continue };
        let per_iter = |s: f64| s * 1e3 / args.iters as f64;
        let covered: f64 = p.sections.iter().map(|s| s.seconds).sum();
        write_stdout(&format!(
            "profile {}: {:.2} ms/iteration profiled ({:.2} timed), sections cover {:.0} %",
            r.mode,
            per_iter(p.seconds),
            per_iter(r.seconds),
            100.0 * covered / p.seconds
        ));
        for s in &p.sections {
            write_stdout(&format!(
                "  {:12} {:>9.3} ms/iteration {:>5.1} %  ({} calls)",
                s.name,
                per_iter(s.seconds),
                100.0 * s.seconds / p.seconds,
                s.calls
            ));
        }
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "shape": shape, "batch": args.batch, "seq": args.seq, "iters": args.iters,
            "dtype": args.dtype, "device": args.device, "rows": rows,
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("json values serialise");
        bytes.push(b'\n');
        std::fs::write(path, bytes).map_err(|e| {
            CliError::new(
                ExitCode::Input,
                anyhow::Error::new(e)
                    .context(format!("--json {} could not be written", path.display())),
            )
        })?;
    }
    Ok(())
}
