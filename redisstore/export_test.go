package redisstore

// IndexAddScriptSHA is the SHA1 of the IndexAdd script, for tests that call
// it by hand.
func IndexAddScriptSHA() string { return indexAddScript.Hash() }
