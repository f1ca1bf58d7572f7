//! The kernel's format rule (`infer`'s `_checkFormat` and `choiceCount`) against the protocol
//! crate's (`OutputFormat::from_parts`) on the same generated cases: a format the kernel accepts
//! is one every worker reads, the same way, and one it refuses is refused by both. (The output
//! decoders are compared in `callbacks::test_consumer_decoders_agree_with_the_protocol_crate`.)

use aik_kernel::{OutputFormat, bindings::DecentralizedInference as DI};
use alloy::{
    primitives::{Bytes, I256, U256},
    sol_types::SolValue,
};

use crate::fixture::{Env, PRICE};

type Errors = DI::DecentralizedInferenceErrors;

/// A xorshift stream: the cases are the same on every run.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Short options: often empty, often equal to another, sometimes not UTF-8.
    fn option(&mut self) -> Vec<u8> {
        let pool: [&[u8]; 6] = [b"", b"yes", b"no", b"maybe", b"\xff\xfe", "é".as_bytes()];
        pool[self.below(pool.len() as u64) as usize].to_vec()
    }

    /// An integer word: small (so both orders occur), near a sign boundary, or random.
    fn word(&mut self) -> U256 {
        match self.below(4) {
            0 => U256::from(self.below(8)),
            1 => I256::try_from(self.below(8) as i64 - 4).unwrap().into_raw(),
            2 => U256::MAX - U256::from(self.below(3)),
            _ => U256::from_limbs([self.next(), self.next(), self.next(), self.next()]),
        }
    }

    /// Options bytes for `kind`: canonical encodings, then mutations of them.
    fn options(&mut self, kind: u8) -> Vec<u8> {
        let mut bytes = match kind {
            2 => {
                let count = [0, 1, 2, 2, 3, 4, 256, 257][self.below(8) as usize];
                let options: Vec<Bytes> = (0..count)
                    .map(|i| if count > 4 { format!("o{i}").into_bytes() } else { self.option() })
                    .map(Bytes::from)
                    .collect();
                options.abi_encode()
            }
            3 | 4 => (self.word(), self.word()).abi_encode_params(),
            _ => Vec::new(),
        };
        match self.below(8) {
            0 if !bytes.is_empty() => {
                let cut = self.below(bytes.len() as u64) as usize;
                bytes.truncate(cut);
            }
            1 => bytes.extend(std::iter::repeat_n(0, [1, 31, 32][self.below(3) as usize])),
            2 if bytes.len() > 64 => bytes[63] = 0x40, // the array's offset moves
            3 if bytes.len() > 96 => bytes[95] = bytes[95].wrapping_add(1), // its length changes
            _ => {}
        }
        bytes
    }
}

#[tokio::test]
async fn test_format_rule_matches_the_protocol_crate() {
    let env = Env::new().await;
    let requester = &env.requesters[0];
    let kernel = requester.kernel();
    let base = env.request("hello").to_sol();
    let fee = U256::from(100 * PRICE);
    let mut cases = Cases(0x2545_f491_4f6c_dd1d);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..600 {
        let kind = [0u8, 1, 2, 2, 2, 3, 3, 4, 4, 5][cases.below(10) as usize];
        let options = cases.options(kind);
        let rust = OutputFormat::from_parts(kind, &options);
        let mut request = base.clone();
        request.format = DI::OutputFormat { kind, options: options.clone().into() };
        let sol = kernel.infer(request).value(fee).call().await;
        let what = format!("case {case}: kind {kind}, options 0x{}", alloy::hex::encode(&options));
        match (&sol, &rust) {
            (Ok(_), Ok(_)) => accepted += 1,
            (Err(err), Err(_)) => {
                refused += 1;
                // A kind outside the enum fails ABI decoding (no error data); every other
                // refusal names the format.
                let decoded = err.as_decoded_interface_error::<Errors>();
                if kind <= 4 {
                    assert_eq!(
                        decoded,
                        Some(Errors::DecentralizedInferenceInvalidFormatOptions(
                            DI::DecentralizedInferenceInvalidFormatOptions { kind }
                        )),
                        "{what}"
                    );
                }
            }
            _ => panic!("{what}: kernel {:?}, protocol {rust:?}", sol.map(|_| ())),
        }
        if kind == 2 {
            let count = kernel.choiceCount(options.clone().into()).call().await.ok();
            let rust_count = match &rust {
                Ok(OutputFormat::Choice(choices)) => Some(U256::from(choices.len())),
                _ => None,
            };
            assert_eq!(count, rust_count, "{what}");
        }
    }
    // Both outcomes occur often enough for the comparison to mean something.
    assert!(accepted > 150 && refused > 150, "accepted {accepted}, refused {refused}");
}
