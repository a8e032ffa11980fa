#include "timekeeper.hpp"

#include <vector>

#include "worker_pool.hpp"

namespace dagsched::detail {

Timekeeper::~Timekeeper() {
  {
    Lock lock(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void Timekeeper::insert(Key key, Entry entry) {
  const bool earliest = m_entries.empty() || key < m_entries.begin()->first;
  m_entries.emplace(key, std::move(entry));
  if (!m_thread.joinable()) {
    m_thread = std::thread([this] { thread_main(); });
  } else if (earliest) {
    m_cv.notify_one();  // it sleeps until the old earliest entry; only an earlier one needs to wake it
  }
}

void Timekeeper::ensure_started() {
  Lock lock(m_mutex);
  if (!m_thread.joinable()) {
    m_thread = std::thread([this] { thread_main(); });
  }
}

void Timekeeper::wake_at(Nanos due, WorkerPool& pool) {
  Lock lock(m_mutex);
  insert({due, m_next_ticket++}, Entry{&pool, std::stop_source(std::nostopstate)});
}

Timekeeper::Ticket Timekeeper::stop_at(Nanos due, std::stop_source source) {
  Lock lock(m_mutex);
  const Ticket ticket{due, m_next_ticket++};
  insert(ticket, Entry{nullptr, std::move(source)});
  return ticket;
}

void Timekeeper::cancel(Ticket ticket) noexcept {
  if (ticket.second == 0) {
    return;
  }
  Lock lock(m_mutex);
  m_entries.erase(ticket);
}

void Timekeeper::thread_main() {
  std::vector<Entry> fired;
  for (;;) {
    {
      Lock lock(m_mutex);
      for (;;) {
        if (m_stop) {
          return;
        }
        if (m_entries.empty()) {
          lock.wait(m_cv);
          continue;
        }
        const Nanos due = m_entries.begin()->first.first;
        if (due <= clock_now()) {
          break;
        }
        lock.wait_until(m_cv, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(due)));
      }
      const Nanos now = clock_now();
      while (!m_entries.empty() && m_entries.begin()->first.first <= now) {
        fired.push_back(std::move(m_entries.begin()->second));
        m_entries.erase(m_entries.begin());
      }
    }
    // Outside the lock: a stop request runs the task's stop callbacks, which may do anything.
    for (Entry& entry : fired) {
      if (entry.pool != nullptr) {
        entry.pool->timer_wake();
      } else {
        entry.stop.request_stop();
      }
    }
    fired.clear();
  }
}

}  // namespace dagsched::detail
