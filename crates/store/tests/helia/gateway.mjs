// A trustless gateway run by Helia, offline (no routers, no block brokers): adds the files named
// on the command line the way Kubo's `ipfs add --cid-version 1` does (256 KiB raw leaves, a
// balanced DAG of at most 174 links), prints `added <path> <cid>` for each, then serves
// GET /ipfs/<cid>?format=car (Helia's own CAR export, in the order it walks the DAG) and
// ?format=raw (one block) on 127.0.0.1:<port>.
//
//   node gateway.mjs <port> <file>|wide:<file>...
import http from 'node:http'
import fs from 'node:fs'
import { createHeliaHTTP } from '@helia/http'
import { unixfs } from '@helia/unixfs'
import { car } from '@helia/car'
import { CID } from 'multiformats/cid'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

// Node 20 lacks Promise.withResolvers, which Helia's queues call (not at import time).
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const [port, ...files] = process.argv.slice(2)
const helia = await createHeliaHTTP({ routers: [], blockBrokers: [] })
const fsx = unixfs(helia)
const cars = car(helia)
for (const arg of files) {
  // `wide:PATH` adds with 1 MiB chunks and up to 1024 links per node (the newer profile some
  // tools default to), which give another id than Kubo's defaults for any file over one chunk.
  const wide = arg.startsWith('wide:')
  const path = wide ? arg.slice('wide:'.length) : arg
  const options = {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: wide ? 1048576 : 262144 }),
    layout: balanced({ maxChildrenPerNode: wide ? 1024 : 174 }),
  }
  const cid = await fsx.addByteStream(fs.createReadStream(path), options)
  console.log(`added ${arg} ${cid.toString()}`)
}
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://x')
    const cid = CID.parse(url.pathname.replace(/^\/ipfs\//, ''))
    if (url.searchParams.get('format') === 'car') {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=unk; dups=n' })
      for await (const buf of cars.stream(cid)) res.write(buf)
      res.end()
    } else if (url.searchParams.get('format') === 'raw') {
      const block = await helia.blockstore.get(cid, { offline: true })
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw' })
      res.end(block)
    } else {
      res.writeHead(400); res.end('format=car or format=raw')
    }
  } catch (e) {
    res.writeHead(404); res.end(String(e))
  }
})
server.listen(Number(port), '127.0.0.1', () => console.log(`listening ${server.address().port}`))
