//! Any byte string: the GGUF reader and the model loader return errors, never panic, and never
//! allocate more than the input's size.
#![no_main]

use aik_infer::{ExecOptions, Gguf, LlamaGgufDriver};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(gguf) = Gguf::read(data.to_vec()) {
        let _ = LlamaGgufDriver::from_gguf(&gguf, ExecOptions { threads: 1, ..Default::default() });
    }
});
