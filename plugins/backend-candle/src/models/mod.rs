//! Model architectures. One module per family; today only the Llama family
//! (llama, qwen2, mistral), selected by config switches.

pub mod llama;
