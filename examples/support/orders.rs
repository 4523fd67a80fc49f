//! Hand-written equivalent of `tonic-build` output for a tiny
//! `orders.v1.Orders` gRPC service (tonic 0.14 + tonic-prost + prost 0.14),
//! so tests and examples need neither `protoc` nor a `build.rs`.
//!
//! ```proto
//! service Orders {
//!   rpc GetOrder(GetOrderRequest) returns (Order);
//!   rpc ListOrders(ListOrdersRequest) returns (stream Order);
//! }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio_stream::Stream;
use tonic::server::{Grpc, NamedService, ServerStreamingService, UnaryService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, GrpcMethod, IntoRequest, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

/// Boxed `Send` future, as `tonic::codegen::BoxFuture`.
type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

/// The gRPC service name.
pub const SERVICE_NAME: &str = "orders.v1.Orders";
/// HTTP/2 path of the unary `GetOrder` method.
pub const GET_ORDER_PATH: &str = "/orders.v1.Orders/GetOrder";
/// HTTP/2 path of the server-streaming `ListOrders` method.
pub const LIST_ORDERS_PATH: &str = "/orders.v1.Orders/ListOrders";
/// `ListOrders` with a larger `count` fails with `RESOURCE_EXHAUSTED` after one order.
pub const MAX_LIST: u32 = 100;

/// Request of `GetOrder`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct GetOrderRequest {
    /// Order id; 0 answers `NOT_FOUND`.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// Request of `ListOrders`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ListOrdersRequest {
    /// How many orders to stream.
    #[prost(uint32, tag = "1")]
    pub count: u32,
}

/// An order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Order {
    /// Order id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Item name.
    #[prost(string, tag = "2")]
    pub item: String,
    /// Quantity ordered.
    #[prost(uint32, tag = "3")]
    pub quantity: u32,
}

/// Response stream of `ListOrders`, as the generated `ListOrdersStream` would be.
pub type OrderStream = Pin<Box<dyn Stream<Item = Result<Order, Status>> + Send + 'static>>;

/// The order the server returns for `id`.
pub fn order(id: u64) -> Order {
    Order {
        id,
        item: format!("item-{id}"),
        quantity: (id % 5) as u32 + 1,
    }
}

/// Handler of `GetOrder`.
struct GetOrderSvc;

impl UnaryService<GetOrderRequest> for GetOrderSvc {
    type Response = Order;
    type Future = BoxFuture<Response<Order>, Status>;

    fn call(&mut self, request: Request<GetOrderRequest>) -> Self::Future {
        let id = request.into_inner().id;
        Box::pin(async move {
            match id {
                0 => Err(Status::not_found("no order with id 0")),
                id => Ok(Response::new(order(id))),
            }
        })
    }
}

/// Handler of `ListOrders`.
struct ListOrdersSvc;

impl ServerStreamingService<ListOrdersRequest> for ListOrdersSvc {
    type Response = Order;
    type ResponseStream = OrderStream;
    type Future = BoxFuture<Response<OrderStream>, Status>;

    fn call(&mut self, request: Request<ListOrdersRequest>) -> Self::Future {
        let count = request.into_inner().count;
        let items: Vec<Result<Order, Status>> = if count > MAX_LIST {
            // Headers and the first message go out; the status ends the
            // stream in the trailers.
            let msg = format!("count {count} exceeds {MAX_LIST}");
            vec![Ok(order(1)), Err(Status::resource_exhausted(msg))]
        } else {
            (1..=u64::from(count)).map(|id| Ok(order(id))).collect()
        };
        let stream: OrderStream = Box::pin(tokio_stream::iter(items));
        Box::pin(async move { Ok(Response::new(stream)) })
    }
}

/// Server of `orders.v1.Orders`, for `Server::builder().add_service(..)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrdersServer;

impl OrdersServer {
    /// A new server.
    pub fn new() -> Self {
        Self
    }
}

impl<B> tower::Service<http::Request<B>> for OrdersServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            GET_ORDER_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::default());
                Ok(grpc.unary(GetOrderSvc, req).await)
            }),
            LIST_ORDERS_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::default());
                Ok(grpc.server_streaming(ListOrdersSvc, req).await)
            }),
            // Unknown method of this service: trailers-only UNIMPLEMENTED.
            _ => Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(Status::GRPC_STATUS, (Code::Unimplemented as i32).into());
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                Ok(response)
            }),
        }
    }
}

impl NamedService for OrdersServer {
    const NAME: &'static str = SERVICE_NAME;
}

/// Client of `orders.v1.Orders` over a tonic `Channel`.
#[derive(Debug, Clone)]
pub struct OrdersClient {
    inner: tonic::client::Grpc<Channel>,
}

impl OrdersClient {
    /// A client over `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            inner: tonic::client::Grpc::new(channel),
        }
    }

    /// Connects over plain-text HTTP/2 to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        Ok(Self::new(channel))
    }

    /// Calls the unary `GetOrder`.
    pub async fn get_order(
        &mut self,
        request: impl IntoRequest<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
        let path = http::uri::PathAndQuery::from_static(GET_ORDER_PATH);
        let mut req = request.into_request();
        req.extensions_mut()
            .insert(GrpcMethod::new(SERVICE_NAME, "GetOrder"));
        self.inner.unary(req, path, ProstCodec::default()).await
    }

    /// Calls the server-streaming `ListOrders`.
    pub async fn list_orders(
        &mut self,
        request: impl IntoRequest<ListOrdersRequest>,
    ) -> Result<Response<Streaming<Order>>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
        let path = http::uri::PathAndQuery::from_static(LIST_ORDERS_PATH);
        let mut req = request.into_request();
        req.extensions_mut()
            .insert(GrpcMethod::new(SERVICE_NAME, "ListOrders"));
        self.inner
            .server_streaming(req, path, ProstCodec::default())
            .await
    }
}
