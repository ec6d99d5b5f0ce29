//! Sending an outgoing request to addresses already vetted: the host name
//! was resolved once, each address checked, and the connection goes to
//! those addresses, never to a second resolution of the name (which a
//! hostile DNS server could answer differently: DNS rebinding). TLS still
//! verifies the certificate against the host name.
//!
//! Apart from where it connects, this is wasmtime-wasi-http's default
//! sender: HTTP/1.1 over hyper, TLS by rustls with the webpki roots, the
//! request's connect, first-byte and between-bytes timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

/// What the guest gets back: the response, and the connection's driver.
pub type Sent = (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>);

/// Send `request` over a connection to one of `addresses` (tried in
/// order), TLS-verified against `host` when the scheme is `https`.
pub async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    host: String,
    addresses: Vec<SocketAddr>,
) -> Result<Sent, Error> {
    let use_tls = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
    let timeout = |t: Option<Duration>| t.unwrap_or(Duration::from_secs(600));
    let connect_timeout = timeout(options.and_then(|o| o.connect_timeout));
    let first_byte_timeout = timeout(options.and_then(|o| o.first_byte_timeout));
    let between_bytes_timeout = timeout(options.and_then(|o| o.between_bytes_timeout)).max(Duration::new(0, 1));

    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(&addresses[..])).await {
        Ok(stream) => stream.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let stream: Box<dyn Stream> = if use_tls {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(host)?,
        };
        Box::new(connector.connect(name, tcp).await.map_err(Error::Tls)?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // Not a proxy: the request line carries the path only.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = http::Uri::builder().path_and_query(path).build().map_err(|_| Error::HttpRequestUriInvalid)?;

    let send = async move {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let mut timeout = tokio::time::interval(between_bytes_timeout);
        timeout.reset();
        Ok::<_, Error>(response.map(|incoming| TimedBody { incoming, timeout }.boxed_unsync()))
    };
    // Wait for the response while driving the connection.
    let mut send = std::pin::pin!(send);
    let mut conn = Some(conn);
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(driver) = conn.as_mut() else { return Poll::Pending };
            let done = ready!(Pin::new(driver).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    let driver = async move {
        match conn.take() {
            None => Ok(()),
            Some(conn) => conn.await.map_err(|e| if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() }),
        }
    };
    Ok((response, Box::new(driver)))
}

/// A response body that fails when no bytes come for the between-bytes
/// timeout.
struct TimedBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
