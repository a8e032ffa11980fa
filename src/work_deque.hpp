// A worker's own queue of ready tasks: a Chase-Lev work-stealing deque of task items.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace dagsched::detail {

/// The owner pushes and pops at the bottom (LIFO, cache-warm); thieves steal from the top (FIFO).
/// Items are 32-bit task items, so slots are plain std::atomic<uint32_t>: no data race is possible on a
/// slot even when a thief reads one the owner is about to reuse (the CAS on m_top then fails).
///
/// Memory orders: the owner's stores to m_bottom are release or stronger, and a thief's load of m_bottom
/// is seq_cst (so acquire), so whatever the owner did before pushing an item (readying it, writing its
/// dependencies' results) happens-before the thief runs it. push() stores m_bottom seq_cst because it is
/// the publication EventCount's Dekker argument needs before a notify; push_quiet() stores it release, for
/// a batch that publish() then makes seq_cst-visible with one store. pop() and steal() race for the last item: both
/// sides order their m_bottom / m_top accesses with seq_cst operations (a store-load pair on the owner's side), so at
/// most one of them takes it, settled by the CAS on m_top.
///
/// The ring grows (doubling) when full; replaced rings stay allocated until `reclaim()`, which the owner
/// calls only when no thief can be reading (between runs), because a thief may still hold an old pointer.
class WorkDeque {
 public:
  static constexpr std::uint32_t empty = UINT32_MAX;

  explicit WorkDeque(std::int64_t capacity = 256) {
    m_rings.push_back(std::make_unique<Ring>(capacity));
    m_ring.store(m_rings.back().get(), std::memory_order_relaxed);
  }

  /// Owner only. Publishes the item seq_cst (see EventCount).
  [[gnu::always_inline]] void push(std::uint32_t item) { push(item, std::memory_order_seq_cst); }

  /// Owner only. Publishes the item with release order only; call publish() after the last one.
  [[gnu::always_inline]] void push_quiet(std::uint32_t item) { push(item, std::memory_order_release); }

  /// Owner only. Re-stores m_bottom seq_cst, publishing earlier push_quiet() calls for EventCount.
  void publish() noexcept { m_bottom.store(m_bottom.load(std::memory_order_relaxed), std::memory_order_seq_cst); }

  /// Owner only. Returns `empty` when there is nothing to pop.
  [[nodiscard]] std::uint32_t pop() noexcept {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed) - 1;
    Ring* ring = m_ring.load(std::memory_order_relaxed);
    m_bottom.store(b, std::memory_order_seq_cst);
    std::int64_t t = m_top.load(std::memory_order_seq_cst);
    if (t > b) {
      m_bottom.store(b + 1, std::memory_order_release);
      return empty;
    }
    std::uint32_t item = ring->get(b);
    if (t == b) {
      // The last item: race the thieves for it.
      if (!m_top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        item = empty;
      }
      m_bottom.store(b + 1, std::memory_order_release);
    }
    return item;
  }

  /// Any thread. Returns `empty` when there is nothing to steal or another thread won the race for it.
  [[nodiscard]] std::uint32_t steal() noexcept {
    std::int64_t t = m_top.load(std::memory_order_seq_cst);
    const std::int64_t b = m_bottom.load(std::memory_order_seq_cst);
    if (t >= b) {
      return empty;
    }
    Ring* ring = m_ring.load(std::memory_order_acquire);
    const std::uint32_t item = ring->get(t);
    if (!m_top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      return empty;
    }
    return item;
  }

  /// Any thread; a hint, exact only when the deque is quiescent.
  [[nodiscard]] bool looks_empty() const noexcept {
    return m_top.load(std::memory_order_seq_cst) >= m_bottom.load(std::memory_order_seq_cst);
  }

  /// Owner only, and only while no thief can touch this deque: frees replaced rings.
  void reclaim() {
    Ring* current = m_ring.load(std::memory_order_relaxed);
    std::erase_if(m_rings, [current](const std::unique_ptr<Ring>& r) { return r.get() != current; });
  }

 private:
  [[gnu::always_inline]] void push(std::uint32_t item, std::memory_order order) {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
    const std::int64_t t = m_top.load(std::memory_order_acquire);
    Ring* ring = m_ring.load(std::memory_order_relaxed);
    if (b - t > ring->mask) {
      ring = grow(ring, t, b);
    }
    ring->put(b, item);
    m_bottom.store(b + 1, order);
  }

  struct Ring {
    explicit Ring(std::int64_t capacity)
        : mask(capacity - 1),
          slots(std::make_unique<std::atomic<std::uint32_t>[]>(static_cast<std::size_t>(capacity))) {}
    void put(std::int64_t i, std::uint32_t item) noexcept {
      slots[static_cast<std::size_t>(i & mask)].store(item, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint32_t get(std::int64_t i) const noexcept {
      return slots[static_cast<std::size_t>(i & mask)].load(std::memory_order_relaxed);
    }
    std::int64_t mask;
    std::unique_ptr<std::atomic<std::uint32_t>[]> slots;
  };

  Ring* grow(Ring* old, std::int64_t t, std::int64_t b) {
    auto bigger = std::make_unique<Ring>(2 * (old->mask + 1));
    for (std::int64_t i = t; i < b; ++i) {
      bigger->put(i, old->get(i));
    }
    Ring* ring = bigger.get();
    m_rings.push_back(std::move(bigger));
    m_ring.store(ring, std::memory_order_release);
    return ring;
  }

  // Thieves write m_top, the owner writes m_bottom: separate lines so the owner's pushes and pops do not
  // bounce the line thieves CAS on.
  alignas(64) std::atomic<std::int64_t> m_top{0};
  alignas(64) std::atomic<std::int64_t> m_bottom{0};
  std::atomic<Ring*> m_ring{nullptr};
  std::vector<std::unique_ptr<Ring>> m_rings;  // owner only; the current ring and replaced ones
};

}  // namespace dagsched::detail
