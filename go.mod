module github.com/shmmon/shmmon

go 1.26
