// Starts kinesalite (a Kinesis emulator) on 127.0.0.1 only; its own CLI
// binds every interface. Usage: node kinesalite.js <port>
// Prints "ready <port>" once it accepts connections.
'use strict';
const kinesalite = require('kinesalite');

const port = Number(process.argv[2] || 4567);
const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 64 });
server.listen(port, '127.0.0.1', (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`ready ${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
