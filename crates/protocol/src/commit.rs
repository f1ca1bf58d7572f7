//! The commitment a committee member sends before revealing.

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;

/// The attempt of a challenge's committee, which recomputes a finalized prompt (0 is the first
/// committee, 1 the retry's).
pub const CHALLENGE_ATTEMPT: u8 = 2;

/// `keccak256(abi.encode(promptId, attempt, worker, outputHash, salt))`, what the kernel checks a
/// reveal against. Binding the worker's address makes a copied commitment useless to anyone
/// else; binding the attempt makes a first committee's commitment useless to the retry's and a
/// challenge committee's.
pub fn commitment(
    prompt_id: U256,
    attempt: u8,
    worker: Address,
    output_hash: B256,
    salt: B256,
) -> B256 {
    keccak256((prompt_id, U256::from(attempt), worker, output_hash, salt).abi_encode_params())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_binds_every_field() {
        let base_fields = (
            U256::from(1),
            0u8,
            Address::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        );
        let of = |f: (U256, u8, Address, B256, B256)| commitment(f.0, f.1, f.2, f.3, f.4);
        let base = of(base_fields);
        let (id, attempt, worker, hash, salt) = base_fields;
        for changed in [
            (U256::from(2), attempt, worker, hash, salt),
            (id, 1, worker, hash, salt),
            (id, attempt, Address::repeat_byte(9), hash, salt),
            (id, attempt, worker, B256::repeat_byte(9), salt),
            (id, attempt, worker, hash, B256::repeat_byte(9)),
        ] {
            assert_ne!(base, of(changed), "{changed:?}");
        }
        // abi.encode of five static words: 160 bytes hashed, the attempt as a uint8 word.
        let mut packed = Vec::new();
        packed.extend_from_slice(&U256::from(1).to_be_bytes::<32>());
        packed.extend_from_slice(&[0u8; 32]);
        packed.extend_from_slice(&[0u8; 12]);
        packed.extend_from_slice(Address::repeat_byte(1).as_slice());
        packed.extend_from_slice(B256::repeat_byte(2).as_slice());
        packed.extend_from_slice(B256::repeat_byte(3).as_slice());
        assert_eq!(base, keccak256(&packed));
    }
}
