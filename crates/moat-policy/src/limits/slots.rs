//! A short list kept inline: admissions and budget holds name a handful of principals, and keeping
//! them in place spares the request path an allocation.

/// Up to `N` items inline, more on the heap.
#[derive(Debug)]
pub(crate) struct Slots<T, const N: usize> {
    inline: [Option<T>; N],
    spill: Vec<T>,
}

impl<T, const N: usize> Slots<T, N> {
    /// An empty list; allocates nothing.
    pub(crate) fn new() -> Self {
        Slots {
            inline: std::array::from_fn(|_| None),
            spill: Vec::new(),
        }
    }

    /// Appends an item, in place while there is room.
    pub(crate) fn push(&mut self, item: T) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(item),
            None => self.spill.push(item),
        }
    }

    /// The items in the order they were pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.inline.iter().flatten().chain(self.spill.iter())
    }

    /// The items, mutably, in the order they were pushed.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.inline
            .iter_mut()
            .flatten()
            .chain(self.spill.iter_mut())
    }

    /// Takes all items out, leaving the list empty.
    pub(crate) fn take(&mut self) -> Self {
        std::mem::replace(self, Slots::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_inline_and_spilled_items() {
        let mut slots: Slots<u32, 2> = Slots::new();
        for n in 0..5 {
            slots.push(n);
        }
        assert_eq!(slots.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        let taken = slots.take();
        assert_eq!(taken.iter().count(), 5);
        assert_eq!(slots.iter().count(), 0);
    }
}
