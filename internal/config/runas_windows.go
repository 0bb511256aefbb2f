package config

// umaskRefused is why umask cannot be set here.
const umaskRefused = umaskRefusedWindows

func lookupRunAs(name, group string) (*RunAs, string, error) {
	return nil, "user", errRunAsWindows
}

// checkNice accepts every value: on Windows nice picks the priority
// class the first process is created with (service.priorityClass).
func checkNice(int) error { return nil }
