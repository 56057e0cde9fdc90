//! Generation-tagged tokens: how a poller event finds its handler.

/// What a poller hands back with each event: a handler-table slot and the
/// generation of the registration that owned the slot when the fd was
/// registered.
///
/// Slots are reused; generations are not (until they wrap after 2^32
/// registrations of one slot). An event whose generation no longer matches
/// its slot belongs to a registration that was removed (or whose fd was
/// closed and reused) during the same dispatch batch, and is dropped with
/// one comparison and no map lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Token(pub u64);

impl Token {
    /// Packs a slot index and a generation.
    pub(crate) const fn new(slot: u32, generation: u32) -> Token {
        Token(((generation as u64) << 32) | slot as u64)
    }
    /// The handler-table slot.
    pub(crate) const fn slot(self) -> u32 {
        self.0 as u32
    }
    /// The registration's generation.
    pub(crate) const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn slot_and_generation_round_trip() {
        let t = Token::new(7, u32::MAX);
        assert_eq!((t.slot(), t.generation()), (7, u32::MAX));
    }
}
