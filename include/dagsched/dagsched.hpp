// dagsched: a concurrent, fault-tolerant DAG task scheduler. Include this header for the whole API.
#pragma once

#include "dagsched/errors.hpp"
#include "dagsched/observer.hpp"
#include "dagsched/progress.hpp"
#include "dagsched/result_set.hpp"
#include "dagsched/run_report.hpp"
#include "dagsched/task_handle.hpp"
#include "dagsched/task_result.hpp"
#include "dagsched/task_scheduler.hpp"
#include "dagsched/version.hpp"
