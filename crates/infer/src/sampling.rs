//! Choosing the next token from logits, deterministically.
//!
//! Greedy takes the highest logit, the lowest id among equals. Random sampling draws from a
//! ChaCha20 stream seeded by the request, and every float step is canonical: candidates are
//! ordered by (logit descending, id ascending) with `total_cmp`; top-k keeps the first k;
//! `w_i = exp((l_i − l_max) / T)` with the engine's own `exp`; sums run in candidate order;
//! top-p keeps the shortest prefix whose weight reaches `p · Σw`; the draw is
//! `r = u · Σkept` with `u = (next_u32 >> 8) · 2⁻²⁴` and picks the first candidate whose running
//! sum exceeds `r`.

use crate::math::exp_f32;
use crate::{Error, Result, SamplingSpec};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// Highest logit; ties go to the lowest token id.
    Greedy,
    /// Seeded random sampling.
    Random {
        /// ChaCha20 seed (the request's seed).
        seed: [u8; 32],
        /// Temperature, > 0.
        temperature: f32,
        /// Keep only the `top_k` most likely tokens; 0 keeps all.
        top_k: usize,
        /// Keep the smallest set of most likely tokens whose probability reaches `top_p`;
        /// 1.0 keeps all.
        top_p: f32,
    },
}

impl Sampling {
    /// Random sampling with a seed given as a number (little-endian in the first 8 bytes).
    pub fn seeded(seed: u64, temperature: f32, top_k: usize, top_p: f32) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self::Random { seed: s, temperature, top_k, top_p }
    }

    /// The sampler a request's decoding rule asks for (no top-k: the protocol has none).
    pub fn from_spec(spec: SamplingSpec) -> Self {
        match (spec, spec.temperature_top_p()) {
            (SamplingSpec::Sample { seed, .. }, Some((temperature, top_p))) => {
                Self::seeded(seed, temperature, 0, top_p)
            }
            _ => Self::Greedy,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if let Self::Random { temperature, top_p, .. } = self {
            if !(temperature.is_finite() && *temperature > 0.0) {
                return Err(Error::InvalidRequest(format!(
                    "temperature {temperature} must be a positive finite number"
                )));
            }
            if !(*top_p > 0.0 && *top_p <= 1.0) {
                return Err(Error::InvalidRequest(format!("top_p {top_p} must be in (0, 1]")));
            }
        }
        Ok(())
    }
}

/// A sampler's state across the steps of one generation.
#[derive(Debug)]
pub(crate) struct Sampler {
    sampling: Sampling,
    rng: Option<ChaCha20Rng>,
    candidates: Vec<(f32, u32)>,
    weights: Vec<f32>,
}

impl Sampler {
    pub(crate) fn new(sampling: Sampling) -> Result<Self> {
        sampling.validate()?;
        let rng = match &sampling {
            Sampling::Greedy => None,
            Sampling::Random { seed, .. } => Some(ChaCha20Rng::from_seed(*seed)),
        };
        Ok(Self { sampling, rng, candidates: Vec::new(), weights: Vec::new() })
    }

    /// Picks a token among `allowed` ids (ascending; all ids when `None`). `None` if no token is
    /// allowed.
    pub(crate) fn pick(&mut self, logits: &[f32], allowed: Option<&[u32]>) -> Option<u32> {
        let ids: Box<dyn Iterator<Item = u32>> = match allowed {
            Some(a) => Box::new(a.iter().copied()),
            None => Box::new(0..logits.len() as u32),
        };
        match &self.sampling {
            Sampling::Greedy => {
                let mut best: Option<(f32, u32)> = None;
                for id in ids {
                    let l = logits[id as usize];
                    if best.is_none_or(|(bl, _)| l.total_cmp(&bl).is_gt()) {
                        best = Some((l, id));
                    }
                }
                best.map(|(_, id)| id)
            }
            Sampling::Random { temperature, top_k, top_p, .. } => {
                let (temperature, top_k, top_p) = (*temperature, *top_k, *top_p);
                self.candidates.clear();
                self.candidates.extend(ids.map(|id| (logits[id as usize], id)));
                if self.candidates.is_empty() {
                    return None;
                }
                self.candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                if top_k > 0 && self.candidates.len() > top_k {
                    self.candidates.truncate(top_k);
                }
                let max = self.candidates[0].0;
                self.weights.clear();
                self.weights
                    .extend(self.candidates.iter().map(|&(l, _)| exp_f32((l - max) / temperature)));
                let total: f32 = self.weights.iter().fold(0.0, |a, &w| a + w);
                let mut kept = self.weights.len();
                if top_p < 1.0 {
                    let target = top_p * total;
                    let mut run = 0f32;
                    for (i, &w) in self.weights.iter().enumerate() {
                        run += w;
                        if run >= target {
                            kept = i + 1;
                            break;
                        }
                    }
                }
                let kept_total = self.weights[..kept].iter().fold(0f32, |a, &w| a + w);
                let rng = self.rng.as_mut().expect("random sampling has an rng");
                let u = (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0);
                let r = u * kept_total;
                let mut run = 0f32;
                for (i, &w) in self.weights[..kept].iter().enumerate() {
                    run += w;
                    if run > r {
                        return Some(self.candidates[i].1);
                    }
                }
                Some(self.candidates[kept - 1].1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_max_and_the_lowest_id_on_ties() {
        let mut s = Sampler::new(Sampling::Greedy).unwrap();
        assert_eq!(s.pick(&[0.5, 2.0, 2.0, -1.0], None), Some(1));
        assert_eq!(s.pick(&[0.5, 2.0, 2.0, -1.0], Some(&[0, 2, 3])), Some(2));
        assert_eq!(s.pick(&[0.5], Some(&[])), None);
    }

    #[test]
    fn random_sampling_is_reproducible_and_respects_top_k() {
        let logits: Vec<f32> = (0..100).map(|i| (i % 17) as f32 * 0.3).collect();
        let draw = |seed| {
            let mut s = Sampler::new(Sampling::seeded(seed, 0.8, 5, 0.95)).unwrap();
            (0..50).map(|_| s.pick(&logits, None).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // top-k 5: only the five highest (16·0.3 at ids 16, 33, 50, 67, 84) can appear.
        assert!(draw(7).iter().all(|id| [16, 33, 50, 67, 84].contains(id)), "{:?}", draw(7));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(Sampler::new(Sampling::seeded(1, 0.0, 0, 1.0)).is_err());
        assert!(Sampler::new(Sampling::seeded(1, 1.0, 0, 1.5)).is_err());
    }
}
