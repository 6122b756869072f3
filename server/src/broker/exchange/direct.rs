//! Direct routing: a message goes to the bindings whose key equals its
//! routing key exactly. One hash lookup per publish.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::Destination;

#[derive(Default)]
pub(super) struct DirectRouter {
    by_key: FxHashMap<Box<str>, SmallVec<[Destination; 2]>>,
}

impl DirectRouter {
    pub fn add(&mut self, key: &str, dest: Destination) {
        self.by_key.entry(key.into()).or_default().push(dest);
    }

    pub fn remove(&mut self, key: &str, dest: &Destination) {
        if let Some(list) = self.by_key.get_mut(key) {
            if let Some(pos) = list.iter().position(|d| d.same(dest)) {
                list.remove(pos);
            }
            if list.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    pub fn route(&self, key: &str, out: &mut Vec<Destination>) {
        if let Some(list) = self.by_key.get(key) {
            out.extend(list.iter().cloned());
        }
    }
}
