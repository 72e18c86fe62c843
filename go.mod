module github.com/gowebsock/websocket

go 1.24
