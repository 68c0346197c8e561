//! generate(): the KV-cached greedy decoder against the uncached reference, batching
//! independence, stops, and position-restricted edits (issue 7).

use valex_backend_candle::{CandleBackend, CandleLoader};
use valex_core::{
    EditPositions, GenerateRequest, Generated, ModelBackend, NeuronEdit, ScoreRequest, StopReason,
};

use crate::parity::fixture_dir;

const ARCHS: [&str; 5] = ["llama", "llama3", "qwen2", "mistral", "gpt2"];

fn backend(arch: &str, batch_size: usize) -> CandleBackend {
    CandleLoader::for_dir(fixture_dir(arch))
        .with_batch_size(batch_size)
        .load_backend()
        .unwrap()
}

fn request(prompt: &[u32], max_new_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.to_vec(),
        max_new_tokens,
        ..GenerateRequest::default()
    }
}

/// Prompts of different lengths (3, 1, 9 and 6 tokens).
fn prompts() -> Vec<GenerateRequest> {
    [
        &[1, 5, 9][..],
        &[1],
        &[1, 3, 4, 5, 6, 7, 8, 9, 10],
        &[1, 12, 13, 14, 15, 16],
    ]
    .iter()
    .map(|p| request(p, 12))
    .collect()
}

/// Zeroes a few neurons of every layer at the family's edit tap.
fn zero_edit(b: &CandleBackend) -> NeuronEdit {
    let tap = b.capabilities().intervention_taps[1].clone();
    let n = b.info().n_layers;
    NeuronEdit::multiply(tap, vec![(0..8).map(|j| (j * 3, 0.0)).collect(); n])
}

fn tokens(g: &[Generated]) -> Vec<Vec<u32>> {
    g.iter().map(|x| x.tokens.clone()).collect()
}

#[test]
fn kv_cache_tokens_equal_uncached_argmax_decoding_on_every_fixture() {
    for arch in ARCHS {
        let mut b = backend(arch, 8);
        let reqs = prompts();
        let cached = b.generate(&reqs, None).unwrap();
        let plain = b.generate_uncached(&reqs, None).unwrap();
        assert_eq!(tokens(&cached), tokens(&plain), "{arch}");
        for g in &cached {
            assert_eq!(g.tokens.len(), 12, "{arch}: no stop was requested");
            assert_eq!(g.stop, StopReason::MaxTokens);
        }
        // The answers differ between prompts (the check is not vacuous).
        assert_ne!(cached[0].tokens, cached[2].tokens, "{arch}");
        // With an edit, too.
        let e = zero_edit(&b);
        let cached_e = b.generate(&reqs, Some(&e)).unwrap();
        assert_eq!(
            tokens(&cached_e),
            tokens(&b.generate_uncached(&reqs, Some(&e)).unwrap()),
            "{arch} edited"
        );
    }
}

#[test]
fn a_batch_of_different_lengths_gives_each_prompt_its_own_tokens() {
    for arch in ARCHS {
        let reqs = prompts();
        let batched = backend(arch, 8).generate(&reqs, None).unwrap();
        let mut alone = backend(arch, 1);
        for (r, g) in reqs.iter().zip(&batched) {
            let one = alone.generate(std::slice::from_ref(r), None).unwrap();
            assert_eq!(one[0].tokens, g.tokens, "{arch} prompt {:?}", r.prompt);
            assert_eq!(one[0].text, g.text);
        }
    }
}

#[test]
fn generation_stops_at_stop_ids_eos_stop_strings_and_the_limit() {
    let mut b = backend("llama", 8);
    let base = b.generate(&prompts()[..1], None).unwrap().remove(0);
    let stop = base.tokens[3];
    let first = base.tokens.iter().position(|&t| t == stop).unwrap();
    let mut r = prompts().remove(0);
    r.stop_ids = vec![stop];
    let g = b
        .generate(std::slice::from_ref(&r), None)
        .unwrap()
        .remove(0);
    assert_eq!(g.tokens, base.tokens[..=first], "the stop id is kept, last");
    assert_eq!(g.stop, StopReason::StopToken);
    // The model's EOS ids (config.json eos_token_id = 2 here) stop only when asked.
    assert_eq!(b.eos_ids(), [2]);
    let mut r = request(&base.tokens[..0], 0);
    r.prompt = vec![1, 5, 9];
    r.max_new_tokens = 5;
    let g = b
        .generate(std::slice::from_ref(&r), None)
        .unwrap()
        .remove(0);
    assert_eq!(g.tokens, base.tokens[..5]);
    assert_eq!(g.stop, StopReason::MaxTokens);
    let zero = request(&[1, 5], 0);
    assert!(b.generate(&[zero], None).unwrap()[0].tokens.is_empty());
    // Stop strings cut the text before the string.
    let text = &base.text;
    let word = text.split_whitespace().nth(2).unwrap().to_owned();
    let mut r = prompts().remove(0);
    r.stop_strings = vec![word.clone()];
    let g = b
        .generate(std::slice::from_ref(&r), None)
        .unwrap()
        .remove(0);
    assert_eq!(g.stop, StopReason::StopString);
    assert!(
        !g.text.contains(&word) && text.starts_with(g.text.trim_end()),
        "{g:?}"
    );
    assert!(g.tokens.len() < base.tokens.len());
    let e = b
        .generate(&[request(&[], 3)], None)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "generate request 0: empty prompt");
    let e = b
        .generate(&[request(&[1, 99], 3)], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("token id 99 is out of range"), "{e}");
}

#[test]
fn gpt2_generation_stops_at_the_end_of_its_position_table() {
    let mut b = backend("gpt2", 8);
    let prompt: Vec<u32> = (1..29).collect();
    let g = b.generate(&[request(&prompt, 50)], None).unwrap();
    assert_eq!(g[0].tokens.len(), 32 - 28);
    // Each row has its own room: a short prompt batched with a long one runs on, with the
    // same tokens as alone and as the uncached reference.
    let short = request(&[1, 5, 9], 50);
    let both = b
        .generate(&[request(&prompt, 50), short.clone()], None)
        .unwrap();
    assert_eq!(both[0].tokens, g[0].tokens);
    assert_eq!(both[1].tokens.len(), 32 - 3);
    assert_eq!(both[1].stop, StopReason::MaxTokens);
    let alone = b.generate(std::slice::from_ref(&short), None).unwrap();
    assert_eq!(both[1].tokens, alone[0].tokens);
    let reference = b
        .generate_uncached(&[request(&prompt, 50), short], None)
        .unwrap();
    assert_eq!(tokens(&both), tokens(&reference));
    let long: Vec<u32> = (0..32).map(|i| 1 + i % 30).collect();
    let e = b
        .generate(&[request(&long, 5)], None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("leaves no room in the model's 32 positions"),
        "{e}"
    );
}

fn score_reqs() -> Vec<ScoreRequest> {
    vec![
        ScoreRequest {
            context: vec![1, 3, 4, 5],
            continuation: vec![6, 7, 8, 9, 10],
        },
        ScoreRequest {
            context: vec![1, 12],
            continuation: vec![13, 14, 15],
        },
    ]
}

#[test]
fn generated_only_edits_leave_prompt_positions_unchanged_and_change_the_continuation() {
    for arch in ARCHS {
        let mut b = backend(arch, 8);
        let reqs = score_reqs();
        let plain = b.score(&reqs, None).unwrap();
        let all_edit = zero_edit(&b);
        let all = b.score(&reqs, Some(&all_edit)).unwrap();
        let gen_edit = zero_edit(&b).at_positions(EditPositions::Generated);
        let generated = b.score(&reqs, Some(&gen_edit)).unwrap();
        let prompt_edit = zero_edit(&b).at_positions(EditPositions::Prompt);
        let prompt = b.score(&reqs, Some(&prompt_edit)).unwrap();
        for r in 0..reqs.len() {
            // The first continuation token is predicted at the last prompt position.
            assert_eq!(generated[r][0], plain[r][0], "{arch} row {r}: bit for bit");
            assert_eq!(prompt[r][0], all[r][0], "{arch} row {r}: bit for bit");
            assert_ne!(generated[r][1..], plain[r][1..], "{arch} row {r}");
            assert_ne!(prompt[r][1..], all[r][1..], "{arch} row {r}");
            assert_ne!(all[r][0], plain[r][0], "{arch}: the edit matters");
        }
        // "all" is the unrestricted path: the same numbers bit for bit as an edit built
        // without positions, and a prompt-only edit with nothing generated equals it.
        let single = vec![ScoreRequest {
            context: vec![1, 3, 4, 5],
            continuation: vec![6],
        }];
        assert_eq!(
            b.score(
                &single,
                Some(&zero_edit(&b).at_positions(EditPositions::Prompt))
            )
            .unwrap(),
            b.score(&single, Some(&zero_edit(&b))).unwrap(),
            "{arch}"
        );
    }
}

#[test]
fn generation_edits_at_generated_positions_keep_the_first_token() {
    for arch in ["llama", "qwen2", "mistral"] {
        let mut b = backend(arch, 8);
        let reqs = prompts();
        let plain = b.generate(&reqs, None).unwrap();
        let e = zero_edit(&b).at_positions(EditPositions::Generated);
        let cached = b.generate(&reqs, Some(&e)).unwrap();
        assert_eq!(
            tokens(&cached),
            tokens(&b.generate_uncached(&reqs, Some(&e)).unwrap()),
            "{arch}"
        );
        let p = zero_edit(&b).at_positions(EditPositions::Prompt);
        assert_eq!(
            tokens(&b.generate(&reqs, Some(&p)).unwrap()),
            tokens(&b.generate_uncached(&reqs, Some(&p)).unwrap()),
            "{arch} prompt-only"
        );
        for (g, q) in cached.iter().zip(&plain) {
            assert_eq!(
                g.tokens[0], q.tokens[0],
                "{arch}: predicted from the prompt"
            );
        }
        assert_ne!(
            tokens(&cached),
            tokens(&plain),
            "{arch}: the edit matters later"
        );
    }
}

/// Throughput of the KV-cached decoder against the uncached reference on the `mid` bench
/// shape (4 layers, hidden 512, vocab 8192; random weights), 4 prompts of 64 tokens, 64 new
/// tokens each. Ignored by default (timing); run with
/// `cargo nextest run -p valex-backend-candle --run-ignored only generation_speed`.
#[test]
#[ignore = "timing, not a check"]
fn generation_speed_kv_cache_vs_uncached() {
    use valex_backend_candle::bench::{SHAPES, inputs, random_backend};
    let shape = SHAPES.iter().find(|s| s.name == "mid").unwrap();
    let mut b = random_backend(
        shape,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
        valex_core::BatchPolicy::rows(8),
    )
    .unwrap();
    let reqs: Vec<GenerateRequest> = inputs(shape, 4, 64, 7)
        .into_iter()
        .map(|mut p| {
            p.truncate(64);
            p.resize(64, 5);
            request(&p, 64)
        })
        .collect();
    let t = std::time::Instant::now();
    let cached = b.generate(&reqs, None).unwrap();
    let s_cached = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let plain = b.generate_uncached(&reqs, None).unwrap();
    let s_plain = t.elapsed().as_secs_f64();
    assert_eq!(tokens(&cached), tokens(&plain));
    let n = cached.iter().map(|g| g.tokens.len()).sum::<usize>() as f64;
    eprintln!(
        "generate {n} tokens: kv cache {:.1} tok/s ({s_cached:.2} s), uncached {:.1} tok/s ({s_plain:.2} s), speed-up {:.1}x",
        n / s_cached,
        n / s_plain,
        s_plain / s_cached
    );
}

#[test]
fn the_position_mask_keeps_every_prompt_logit_bit_for_bit_and_an_all_ones_mask_is_the_old_path() {
    use valex_backend_candle::Padding;
    use valex_backend_candle::tap::{LayerMultipliers, TapSet};
    for arch in ARCHS {
        let b = backend(arch, 8);
        let m = b.model();
        let info = b.info().clone();
        let ids: Vec<u32> = vec![1, 3, 4, 5, 6, 7, 8, 9, 10];
        let prompt = 5;
        let rows: Vec<&[u32]> = vec![&ids];
        let build = |e: Option<&NeuronEdit>| {
            LayerMultipliers::build(
                e,
                m.config().family,
                info.n_layers,
                info.n_neurons,
                m.dtype(),
                m.device(),
            )
            .unwrap()
        };
        let run = |mult: &LayerMultipliers, mask: Option<EditPositions>| -> Vec<Vec<f32>> {
            let mut input = m.pad(&rows, Padding::Right).unwrap();
            if let Some(p) = mask {
                input.restrict_edit(|_, t| p.applies(t >= prompt)).unwrap();
            }
            let h = m
                .forward_layers(&input, mult, TapSet::EMPTY, &mut |_, _, _| Ok(()), true)
                .unwrap()
                .unwrap();
            let all: Vec<u32> = (0..u32::try_from(ids.len()).unwrap()).collect();
            m.logits_rows(&h, &all).unwrap().to_vec2().unwrap()
        };
        let edit = zero_edit(&b);
        let plain = run(&build(None), None);
        let edited = run(&build(Some(&edit)), None);
        let generated = run(&build(Some(&edit)), Some(EditPositions::Generated));
        let prompt_only = run(&build(Some(&edit)), Some(EditPositions::Prompt));
        let ones = run(&build(Some(&edit)), Some(EditPositions::All));
        assert_eq!(
            generated[..prompt],
            plain[..prompt],
            "{arch}: prompt logits"
        );
        assert_eq!(prompt_only[..prompt], edited[..prompt], "{arch}");
        for t in prompt..ids.len() {
            assert_ne!(generated[t], plain[t], "{arch}: continuation position {t}");
        }
        // The prompt's unedited activations reach the continuation through attention (not
        // at every position under Mistral's 4-token window).
        assert_ne!(generated[prompt..], edited[prompt..], "{arch}");
        assert_eq!(
            ones, edited,
            "{arch}: an all-ones mask is the unmasked path, bit for bit"
        );
    }
}

#[test]
fn chat_prompts_carry_the_system_turn_and_the_templates_end_token_stops() {
    let mut b = CandleLoader::for_dir(fixture_dir("qwen2"))
        .with_chat_template(None)
        .load_backend()
        .unwrap();
    // config.json has eos_token_id null; tokenizer_config.json's eos_token "</s>" is id 2.
    assert_eq!(b.eos_ids(), [2]);
    let with = b.encode_chat(Some("a b"), "c d").unwrap();
    let without = b.encode_chat(None, "c d").unwrap();
    let text = |ids: &[u32]| {
        let toks: Vec<String> = ids
            .iter()
            .map(|&i| b.tokenizer().id_to_token(i).unwrap())
            .collect();
        toks.join(" ")
    };
    let (w, wo) = (text(&with.ids), text(&without.ids));
    assert!(
        w.starts_with("<|im_start|>") && w.contains("<|im_end|>"),
        "{w}"
    );
    assert_ne!(
        w, wo,
        "the system message replaces the template's default one"
    );
    assert!(wo.contains("helpful"), "{wo}");
    assert!(w.ends_with(&wo[wo.find("<|im_end|>").unwrap() + "<|im_end|>".len()..]));
    let req = |stop_at_eos| GenerateRequest {
        prompt: with.ids.clone(),
        max_new_tokens: 12,
        stop_at_eos,
        ..GenerateRequest::default()
    };
    let free = b.generate(&[req(false)], None).unwrap().remove(0);
    let stopped = b.generate(&[req(true)], None).unwrap().remove(0);
    // With stop_at_eos the tokens are the free run's, cut after its first end token.
    let cut = free
        .tokens
        .iter()
        .position(|&t| t == 2)
        .map_or(free.tokens.len(), |i| i + 1);
    assert_eq!(stopped.tokens, free.tokens[..cut]);
    assert_eq!(free.stop, StopReason::MaxTokens);
}
