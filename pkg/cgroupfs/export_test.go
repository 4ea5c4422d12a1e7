package cgroupfs

// ResetSwappinessArg forgets that memory.reclaim refused "swappiness=".
func ResetSwappinessArg() { noSwappinessArg.Store(false) }
