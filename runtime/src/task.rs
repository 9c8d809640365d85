//! Spawned tasks tied to the scope that owns them: the reflector's pager task and the manager's
//! lease-holding task stop when the future that started them is dropped (a cancelled list, an
//! aborted manager), never outliving it.

use tokio::task::JoinHandle;

/// Aborts the task when dropped. The handle stays usable to await the task's result.
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
