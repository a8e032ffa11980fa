// dagsched: library version.
#pragma once

#define DAGSCHED_VERSION_MAJOR 0
#define DAGSCHED_VERSION_MINOR 1
#define DAGSCHED_VERSION_PATCH 0

namespace dagsched {
/// The library version as "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";
}  // namespace dagsched
