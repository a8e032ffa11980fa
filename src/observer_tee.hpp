// Two observers as one: the user's (RunOptions::observer) and the recorder (RunOptions::record).
#pragma once

#include <memory>
#include <utility>

#include "dagsched/observer.hpp"

namespace dagsched::detail {

class ObserverTee final : public Observer {
 public:
  ObserverTee(std::shared_ptr<Observer> first, std::shared_ptr<Observer> second) noexcept
      : m_first(std::move(first)), m_second(std::move(second)) {}

  void on_run_start(std::size_t tasks, std::size_t workers) override {
    m_first->on_run_start(tasks, workers);
    m_second->on_run_start(tasks, workers);
  }
  void on_task_ready(const TaskEvent& event) override {
    m_first->on_task_ready(event);
    m_second->on_task_ready(event);
  }
  void on_attempt_start(const TaskEvent& event) override {
    m_first->on_attempt_start(event);
    m_second->on_attempt_start(event);
  }
  void on_attempt_end(const TaskEvent& event, const std::exception_ptr& error) override {
    m_first->on_attempt_end(event, error);
    m_second->on_attempt_end(event, error);
  }
  void on_retry_scheduled(const TaskEvent& event, std::chrono::nanoseconds delay) override {
    m_first->on_retry_scheduled(event, delay);
    m_second->on_retry_scheduled(event, delay);
  }
  void on_task_finish(const TaskEvent& event, const TaskResult& result) override {
    m_first->on_task_finish(event, result);
    m_second->on_task_finish(event, result);
  }
  void on_run_end(const ResultSet& results) override {
    m_first->on_run_end(results);
    m_second->on_run_end(results);
  }

 private:
  std::shared_ptr<Observer> m_first;
  std::shared_ptr<Observer> m_second;
};

}  // namespace dagsched::detail
