"""Running a task: the completion service, context assembly, the fallback chain and the tool loop."""
