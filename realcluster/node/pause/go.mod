module taskrun.dev/realcluster/node/pause

go 1.26.0
