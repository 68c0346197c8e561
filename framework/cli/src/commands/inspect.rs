//! `valex inspect`: logits and tap activations of a model directory for a few texts, as one
//! safetensors file, for debugging parity with other implementations.
//!
//! The texts run as one right-padded batch (row `i` holds text `i` from position 0); the file
//! holds `input_ids` and `attention_mask` (I64 `[n, seq]`), `logits` (F32 `[n, seq, vocab]`)
//! and one F32 `[n, seq, width]` tensor per layer and tap named `layers.<i>.<tap>`. Values
//! past a row's end are 0.

use valex_backend_candle::{CandleLoader, DTypeName, DeviceSpec, inspection_safetensors};
use valex_core::{ComponentError, ModelBackend};

use crate::args::InspectArgs;
use crate::exit::{CliError, ExitCode};
use crate::write_stdout;

fn component(e: ComponentError) -> CliError {
    CliError::new(ExitCode::from(e.class), e)
}

pub(crate) fn inspect(args: &InspectArgs) -> Result<(), CliError> {
    if args.out.exists() && !args.force {
        return Err(CliError::usage(format!(
            "output file {} exists already (use --force to replace it)",
            args.out.display()
        )));
    }
    let dtype: DTypeName = serde_json::from_value(serde_json::json!(args.dtype)).map_err(|_| {
        CliError::usage(format!("--dtype {}: expected f32, bf16 or f16", args.dtype))
    })?;
    let device = DeviceSpec::parse(&args.device)
        .map_err(|e| CliError::usage(format!("--device: {}", e.message)))?;
    let mut loader = CandleLoader::for_dir(&args.model)
        .with_dtype(dtype.dtype())
        .with_device(device);
    if args.chat_template {
        loader = loader.with_chat_template(None);
    }
    let mut backend = loader.load_backend().map_err(component)?;
    let taps = if args.taps.is_empty() {
        backend.capabilities().taps
    } else {
        args.taps.clone()
    };
    let rows = args
        .texts
        .iter()
        .map(|t| backend.encode(t).map(|e| e.ids))
        .collect::<Result<Vec<_>, _>>()
        .map_err(component)?;
    let ins = backend.inspect(&rows, &taps).map_err(component)?;
    let bytes = inspection_safetensors(&ins, &rows).map_err(component)?;
    write_file(&args.out, &bytes).map_err(|e| {
        CliError::new(
            ExitCode::Input,
            anyhow::Error::new(e).context(format!(
                "output file {} could not be written",
                args.out.display()
            )),
        )
    })?;
    write_stdout(&format!(
        "wrote {}: {} texts x {} positions, logits [{}, {}, {}], {} tap tensors ({})",
        args.out.display(),
        rows.len(),
        ins.seq,
        rows.len(),
        ins.seq,
        ins.vocab,
        ins.taps.len(),
        taps.join(", ")
    ));
    Ok(())
}

/// Writes via a temp file in the same folder and a rename, so no half-written file remains.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
