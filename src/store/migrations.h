#pragma once
// The schema, as an ordered list of migrations. Internal to the store.

#include "store/store.h"

namespace detops {

// Applies migrations newer than the recorded schema version, each in its own
// transaction, recording it in schema_version.
Status ApplyMigrations(Database& db);

}  // namespace detops
