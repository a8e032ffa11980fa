#include "resource_broker.hpp"

#include <algorithm>

namespace dagsched::detail {

void ResourceBroker::reset(const std::vector<std::uint32_t>& capacities) {
  Lock lock(m_mutex);
  m_capacity = capacities;
  m_used.assign(capacities.size(), 0);
  m_waiters.clear();
  m_seq = 0;
}

bool ResourceBroker::fits(std::span<const Need> needs) const {
  for (const Need& n : needs) {  // a loop, not all_of: the analysis cannot see the lock inside a lambda
    if (m_capacity[n.pool] - m_used[n.pool] < n.units) {
      return false;
    }
  }
  return true;
}

void ResourceBroker::take(std::span<const Need> needs) {
  for (const Need& n : needs) {
    m_used[n.pool] += n.units;
  }
}

bool ResourceBroker::acquire(std::uint32_t task, std::span<const Need> needs, std::uint64_t priority) {
  Lock lock(m_mutex);
  if (fits(needs)) {
    // Passing the queue is allowed unless a waiter of at least this priority has been passed too often.
    bool blocked = false;
    for (const Waiter& w : m_waiters) {
      if (w.priority >= priority && w.bypassed >= max_bypass) {
        blocked = true;
        break;
      }
    }
    if (!blocked) {
      for (Waiter& w : m_waiters) {
        if (w.priority >= priority) {
          ++w.bypassed;
        }
      }
      take(needs);
      return true;
    }
  }
  const Waiter waiter{task, priority, m_seq++, 0, needs};
  const auto at = std::upper_bound(m_waiters.begin(), m_waiters.end(), waiter, [](const Waiter& a, const Waiter& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
  });
  m_waiters.insert(at, waiter);
  return false;
}

void ResourceBroker::grant(std::vector<std::uint32_t>& granted) {
  for (std::size_t i = 0; i < m_waiters.size();) {
    Waiter& w = m_waiters[i];
    if (fits(w.needs)) {
      take(w.needs);
      granted.push_back(w.task);
      for (std::size_t j = 0; j < i; ++j) {
        ++m_waiters[j].bypassed;  // those still waiting ahead of it were passed
      }
      m_waiters.erase(m_waiters.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    if (w.bypassed >= max_bypass) {
      break;  // it reserves: nobody behind it starts before it
    }
    ++i;
  }
}

void ResourceBroker::release(std::span<const Need> needs, std::vector<std::uint32_t>& granted) {
  Lock lock(m_mutex);
  for (const Need& n : needs) {
    m_used[n.pool] -= n.units;
  }
  grant(granted);
}

void ResourceBroker::drain(std::vector<std::uint32_t>& out) {
  Lock lock(m_mutex);
  for (const Waiter& w : m_waiters) {
    out.push_back(w.task);
  }
  m_waiters.clear();
}

std::uint32_t ResourceBroker::in_use(std::uint32_t pool) {
  Lock lock(m_mutex);
  return pool < m_used.size() ? m_used[pool] : 0;
}

}  // namespace dagsched::detail
