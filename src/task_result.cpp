#include "dagsched/task_result.hpp"

#include <ostream>

namespace dagsched {

std::string_view to_string(Status status) noexcept {
  switch (status) {
    case Status::success:
      return "success";
    case Status::failed:
      return "failed";
    case Status::skipped:
      return "skipped";
    case Status::cancelled:
      return "cancelled";
  }
  return "unknown";
}

SkipCauses::SkipCauses(std::vector<std::string> ids) {
  if (!ids.empty()) {
    m_list = new List{{1}, std::move(ids)};
  }
}

std::ostream& operator<<(std::ostream& os, Status status) { return os << to_string(status); }

}  // namespace dagsched
