#pragma once
// Public header of the core module: status, value types, hashing, files,
// JSON helpers. Every other module may include this.

#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/status.h"
#include "core/types.h"
