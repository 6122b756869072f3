//! Fanout routing: every bound destination gets every message.

use super::Destination;

#[derive(Default)]
pub(super) struct FanoutRouter {
    /// Each destination once, with the number of bindings (they may differ
    /// by routing key, which fanout ignores) that lead to it.
    dests: Vec<(Destination, u32)>,
}

impl FanoutRouter {
    pub fn add(&mut self, dest: Destination) {
        match self.dests.iter_mut().find(|(d, _)| d.same(&dest)) {
            Some((_, n)) => *n += 1,
            None => self.dests.push((dest, 1)),
        }
    }

    pub fn remove(&mut self, dest: &Destination) {
        if let Some(pos) = self.dests.iter().position(|(d, _)| d.same(dest)) {
            self.dests[pos].1 -= 1;
            if self.dests[pos].1 == 0 {
                self.dests.swap_remove(pos);
            }
        }
    }

    pub fn route(&self, out: &mut Vec<Destination>) {
        out.extend(self.dests.iter().map(|(d, _)| d.clone()));
    }
}
