// Builds against an installed (or vendored) dagsched and runs a tiny graph.
#include <dagsched/dagsched.hpp>

#include <iostream>

int main() {
  dagsched::TaskScheduler scheduler(2);
  const dagsched::TaskHandle a = scheduler.add_task("a", [] { return 20; });
  scheduler.add_task("b", [] { return 22; });
  scheduler.add_task("sum", [] { return 42; }, {a, dagsched::DependencyRef("b")});
  const dagsched::ResultSet results = scheduler.run();
  std::cout << "dagsched " << dagsched::version_string << ": sum -> " << results.at("sum").value<int>() << '\n';
  return results.at("sum").value<int>() == 42 ? 0 : 1;
}
