// The diamond from the problem statement: A fans out to B and C, which join in D; E is independent.
//
//     A
//    / \.
//   B   C
//    \ /
//     D        E
#include <dagsched/dagsched.hpp>

#include <iostream>
#include <string>

int main() {
  dagsched::TaskScheduler scheduler(4);

  scheduler.add_task("A", [] { return std::string("result_A"); });
  scheduler.add_task("B", [] { return std::string("result_B"); }, {"A"});
  scheduler.add_task("C", [] { return std::string("result_C"); }, {"A"});
  scheduler.add_task("D", [] { return std::string("result_D"); }, {"B", "C"});
  scheduler.add_task("E", [] { return std::string("result_E"); });

  const dagsched::ResultSet results = scheduler.run();

  for (const auto& [id, r] : results) {
    std::cout << id << ": " << r.status << ", result=" << r.value<std::string>() << ", attempts=" << r.attempts << '\n';
  }
  return results.all_succeeded() ? 0 : 1;
}
