package prom

// The process_* families, with client_golang's names and HELP texts.
var (
	procCPU      = [2]string{"process_cpu_seconds_total", "Total user and system CPU time spent in seconds."}
	procOpenFDs  = [2]string{"process_open_fds", "Number of open file descriptors."}
	procMaxFDs   = [2]string{"process_max_fds", "Maximum number of open file descriptors."}
	procVsize    = [2]string{"process_virtual_memory_bytes", "Virtual memory size in bytes."}
	procMaxVsize = [2]string{"process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes."}
	procRSS      = [2]string{"process_resident_memory_bytes", "Resident memory size in bytes."}
	procStart    = [2]string{"process_start_time_seconds", "Start time of the process since unix epoch in seconds."}
	procNetIn    = [2]string{"process_network_receive_bytes_total", "Number of bytes received by the process over the network."}
	procNetOut   = [2]string{"process_network_transmit_bytes_total", "Number of bytes sent by the process over the network."}
)

func procFamily(d [2]string, typ string, v float64) Family {
	return Family{d[0], d[1], typ, []Sample{{Value: v}}}
}
