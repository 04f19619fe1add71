//! Request metrics: a count per method, route pattern and status, and a
//! latency histogram per route pattern (patterns, not paths, keep the label
//! set bounded).

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{web, Error};

use super::AppState;
use crate::metrics::{RequestLabels, RouteLabels};

pub struct RequestMetrics;

impl<S, B> Transform<S, ServiceRequest> for RequestMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestMetricsService {
            service: Rc::new(service),
        }))
    }
}

pub struct RequestMetricsService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for RequestMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let service = self.service.clone();
        Box::pin(async move {
            let res = service.call(req).await?;
            let request = res.request();
            if let Some(state) = request.app_data::<web::Data<AppState>>() {
                let route = request
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_owned());
                state
                    .metrics
                    .http_latency
                    .get_or_create(&RouteLabels {
                        route: route.clone(),
                    })
                    .observe(started.elapsed().as_secs_f64());
                state
                    .metrics
                    .http_requests
                    .get_or_create(&RequestLabels {
                        method: request.method().to_string(),
                        route,
                        status: res.status().as_u16(),
                    })
                    .inc();
            }
            Ok(res)
        })
    }
}
