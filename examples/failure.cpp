// The failure example from the problem statement: B always throws and is retried twice; D, which needs B,
// is skipped; C and E, which do not, still succeed.
#include <dagsched/dagsched.hpp>

#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

}  // namespace

int main() {
  dagsched::TaskScheduler scheduler(4);

  scheduler.add_task("A", [] { return std::string("result_A"); });
  scheduler.add_task(
      "B", []() -> std::string { throw std::invalid_argument("B broke"); }, {"A"}, /*retries=*/2);
  scheduler.add_task("C", [] { return std::string("result_C"); }, {"A"});
  scheduler.add_task("D", [] { return std::string("result_D"); }, {"B", "C"});
  scheduler.add_task("E", [] { return std::string("result_E"); });

  const dagsched::ResultSet results = scheduler.run();

  for (const auto& [id, r] : results) {
    std::cout << id << ": " << r.status << ", attempts=" << r.attempts;
    if (r.error) {
      std::cout << ", error=\"" << describe(r.error) << '"';
    }
    std::cout << '\n';
  }

  const bool as_expected = results.at("B").status == dagsched::Status::failed && results.at("B").attempts == 3 &&
                           results.at("D").status == dagsched::Status::skipped && results.at("C").ok() &&
                           results.at("E").ok();
  return as_expected ? 0 : 1;
}
