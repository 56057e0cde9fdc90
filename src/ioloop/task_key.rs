//! Task keys: how a waker finds its task.

/// Identifies a task: its slab slot and the generation of the spawn that
/// owns the slot, so a late wake for a finished task is ignored. Kept apart
/// from the executor because the remote queue and the thread's running-loop
/// stack carry keys too, and the executor uses both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskKey {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}
