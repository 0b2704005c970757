package controlplaned

// SetRotateStep makes RotateDataKey call fn after each step (nil: off).
func SetRotateStep(fn func(step string) error) { rotateStep = fn }
