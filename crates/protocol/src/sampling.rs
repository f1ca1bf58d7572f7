//! The decoding rule a request records.

/// How the next token is chosen, as the kernel records it (`Sampling` in the request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplingSpec {
    /// Always the most likely token (lowest id on ties).
    Greedy,
    /// Temperature and top-p sampling under a seed.
    Sample {
        /// Temperature in thousandths (1..=[`MAX_TEMPERATURE_MILLI`]).
        temperature_milli: u32,
        /// Nucleus mass in thousandths (1..=[`MAX_TOP_P_MILLI`]).
        top_p_milli: u32,
        /// Seed of the sampler.
        seed: u64,
    },
}

/// Largest temperature a request may ask for, in thousandths: the kernel's `MAX_TEMPERATURE_MILLI`.
pub const MAX_TEMPERATURE_MILLI: u32 = 2_000;

/// Largest nucleus mass, in thousandths: the kernel's `MAX_TOP_P_MILLI`.
pub const MAX_TOP_P_MILLI: u32 = 1_000;

impl SamplingSpec {
    /// The temperature and top-p as the sampler takes them: thousandths divided by 1000 in
    /// `f32` (the one conversion every worker makes), `None` for greedy.
    pub fn temperature_top_p(self) -> Option<(f32, f32)> {
        match self {
            Self::Greedy => None,
            Self::Sample { temperature_milli, top_p_milli, .. } => {
                Some((temperature_milli as f32 / 1000.0, top_p_milli as f32 / 1000.0))
            }
        }
    }
}
