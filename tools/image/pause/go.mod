module settlers-testbed/tools/image/pause

go 1.22
